// flashslide engine: CPU benchmark.
//
// Builds ViT-S/16 (D384, L12, H6, MLP 1536) and ViT-B/16 (D768, L12, H12, MLP 3072)
// with seeded random weights in memory (timm names, cls token, 14x14 pos-embed as
// trained at 224 px, so 512/1024 px exercise the pos-embed resample), runs batch-1
// forwards at 224, 512 and 1024 px and prints ms/forward, tokens/s, GFLOP/s and peak
// RSS. FLOPs count the GEMMs (patch embed, qkv, proj, fc1, fc2: 2*M*N*K) and attention
// (4*T^2*D per block); LayerNorm/activations are not counted. Each configuration runs in
// a forked child so ru_maxrss is that configuration's own peak (weights + activations);
// the parent touches neither OpenMP nor BLAS, so forking is safe.
// A second table times the attention kernel alone at the 1024 px token count.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../cpu/attention_cpu.h"
#include "../engine/engine.h"

using namespace flashslide;

namespace {

struct ModelSpec {
  const char* name;
  int D, L, H, mlp;
};

struct Rng {  // xorshift64*: fast, seeded, good enough for weights
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float uniform() {  // [-1, 1)
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return static_cast<float>((s * 2685821657736338717ull) >> 40) / 8388608.0f - 1.0f;
  }
};

TensorF32 randTensor(Rng& r, std::vector<int64_t> shape, float scale, float offset = 0.0f) {
  TensorF32 t;
  t.shape = std::move(shape);
  size_t n = 1;
  for (int64_t d : t.shape) n *= static_cast<size_t>(d);
  t.data.resize(n);
  for (auto& v : t.data) v = offset + scale * r.uniform();
  return t;
}

TensorMap randomVit(const ModelSpec& m, int patch, uint64_t seed) {
  Rng r(seed);
  TensorMap t;
  const int64_t D = m.D, F = m.mlp;
  const float wD = 1.7f / std::sqrt(static_cast<float>(D)), wF = 1.7f / std::sqrt(static_cast<float>(F));
  t["cls_token"] = randTensor(r, {1, 1, D}, 0.5f);
  t["pos_embed"] = randTensor(r, {1, 1 + 14 * 14, D}, 0.5f);
  t["patch_embed.proj.weight"] = randTensor(r, {D, 3, patch, patch}, 1.7f / std::sqrt(3.0f * patch * patch));
  t["patch_embed.proj.bias"] = randTensor(r, {D}, 0.05f);
  for (int i = 0; i < m.L; ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".";
    t[p + "norm1.weight"] = randTensor(r, {D}, 0.2f, 1.0f);
    t[p + "norm1.bias"] = randTensor(r, {D}, 0.05f);
    t[p + "attn.qkv.weight"] = randTensor(r, {3 * D, D}, wD);
    t[p + "attn.qkv.bias"] = randTensor(r, {3 * D}, 0.05f);
    t[p + "attn.proj.weight"] = randTensor(r, {D, D}, wD);
    t[p + "attn.proj.bias"] = randTensor(r, {D}, 0.05f);
    t[p + "norm2.weight"] = randTensor(r, {D}, 0.2f, 1.0f);
    t[p + "norm2.bias"] = randTensor(r, {D}, 0.05f);
    t[p + "mlp.fc1.weight"] = randTensor(r, {F, D}, wD);
    t[p + "mlp.fc1.bias"] = randTensor(r, {F}, 0.05f);
    t[p + "mlp.fc2.weight"] = randTensor(r, {D, F}, wF);
    t[p + "mlp.fc2.bias"] = randTensor(r, {D}, 0.05f);
  }
  t["norm.weight"] = randTensor(r, {D}, 0.2f, 1.0f);
  t["norm.bias"] = randTensor(r, {D}, 0.05f);
  return t;
}

double forwardFlops(const ModelArch& a, int H, int W) {
  const double p = a.patchSize, Np = (H / a.patchSize) * (W / a.patchSize);
  const double T = a.numPrefixTokens + Np, D = a.embedDim, F = a.fc1Out, Hm = a.mlpHidden;
  double f = 2 * Np * (3 * p * p) * D;
  f += a.depth * (2 * T * D * 3 * D + 2 * T * D * D + 2 * T * D * F + 2 * T * Hm * D + 4 * T * T * D);
  return f;
}

struct Row {
  int tokens;
  double ms, gflops, rssMiB, attnShare;
};

Row runConfig(const ModelSpec& m, int px, int iters) {
  ModelConfig cfg;
  cfg.numHeads = m.H;
  auto eng = Engine::fromTensors(randomVit(m, 16, 42), cfg, Device::Cpu, m.name);
  std::vector<uint8_t> img(static_cast<size_t>(px) * px * 3);
  Rng r(7);
  for (auto& v : img) v = static_cast<uint8_t>((r.uniform() + 1.0f) * 127.5f);
  std::vector<float> out(eng->outputSize(1, px, px));
  // Untimed warm-up (BLAS thread start, pos-embed resample) except at 1024 px, where
  // one forward costs seconds and the resample is < 1% of it.
  if (px < 1024) eng->forward(img.data(), 1, px, px, out.data());
  double best = 1e30;
  for (int i = 0; i < iters; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    eng->forward(img.data(), 1, px, px, out.data());
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  for (float v : out)
    if (!std::isfinite(v)) {
      std::fprintf(stderr, "non-finite output\n");
      std::exit(2);
    }
  const ModelArch& a = eng->arch();
  Row row;
  row.tokens = static_cast<int>(eng->tokens(px, px));
  row.ms = best;
  const double fl = forwardFlops(a, px, px);
  row.gflops = fl / (best * 1e6);
  const double T = row.tokens;
  row.attnShare = a.depth * 4 * T * T * a.embedDim / fl;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  row.rssMiB = ru.ru_maxrss / 1024.0;
  return row;
}

// Runs fn in a child process and returns its Row through a pipe.
template <class Fn>
bool inChild(Fn fn, Row* out) {
  int fd[2];
  if (pipe(fd) != 0) return false;
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    Row r = fn();
    ssize_t w = write(fd[1], &r, sizeof r);
    _exit(w == static_cast<ssize_t>(sizeof r) ? 0 : 1);
  }
  close(fd[1]);
  ssize_t n = read(fd[0], out, sizeof *out);
  close(fd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  return n == static_cast<ssize_t>(sizeof *out) && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

}  // namespace

int main() {
  const ModelSpec models[] = {{"ViT-S/16", 384, 12, 6, 1536}, {"ViT-B/16", 768, 12, 12, 3072}};
  const int sizes[] = {224, 512, 1024};
  const char* threads = std::getenv("OMP_NUM_THREADS");
  std::printf("flashslide CPU engine benchmark: batch 1, fp32, threads=%s (OpenMP + OpenBLAS), "
              "random weights\n\n", threads ? threads : "default");
  std::printf("| model    |   px | tokens |   ms/forward |   tokens/s | GFLOP/s | attn FLOP share | peak RSS MiB |\n");
  std::printf("|----------|------|--------|--------------|------------|---------|-----------------|--------------|\n");
  for (const auto& m : models)
    for (int px : sizes) {
      const int iters = px == 224 ? 5 : px == 512 ? 2 : 1;
      Row r{};
      if (!inChild([&] { return runConfig(m, px, iters); }, &r)) {
        std::printf("| %-8s | %4d | failed |\n", m.name, px);
        continue;
      }
      std::printf("| %-8s | %4d | %6d | %12.1f | %10.0f | %7.1f | %15.2f | %12.0f |\n", m.name, px,
                  r.tokens, r.ms, r.tokens / (r.ms / 1e3), r.gflops, r.attnShare, r.rssMiB);
      std::fflush(stdout);
    }

  std::printf("\nattention kernel alone (T=4097 = 1024 px ViT-B/16, one layer)\n");
  std::printf("| heads x d |   ms  | GFLOP/s (4*T^2*D) |\n|-----------|-------|-------------------|\n");
  const int cfgs[][2] = {{12, 64}, {16, 80}, {6, 128}};
  for (const auto& c : cfgs) {
    Row r{};
    bool ok = inChild(
        [&] {
          const int T = 4097, H = c[0], d = c[1], D = H * d;
          std::vector<float> qkv(static_cast<size_t>(T) * 3 * D), o(static_cast<size_t>(T) * D);
          Rng g(3);
          for (auto& v : qkv) v = g.uniform();
          AttentionWorkspace ws;
          attention_flash(qkv.data(), 1, T, H, d, 1.0f / std::sqrt(float(d)), o.data(), ws);
          auto t0 = std::chrono::steady_clock::now();
          attention_flash(qkv.data(), 1, T, H, d, 1.0f / std::sqrt(float(d)), o.data(), ws);
          Row x{};
          x.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
          x.gflops = 4.0 * T * T * D / (x.ms * 1e6);
          return x;
        },
        &r);
    if (ok) std::printf("| %2d x %-4d | %5.0f | %17.1f |\n", c[0], c[1], r.ms, r.gflops);
  }
  return 0;
}
