// flashslide CUDA backend: engine-level test against the timm fixtures (needs a GPU).
//
//   ./build/cuda/test_engine_cuda [fixtures_dir]   (default ../test/fixtures/timm)
//
// The same comparison as `flashslide model check --device cuda`, without Node: for every
// <name>.safetensors + <name>.json + <name>.io.safetensors, Engine::load(..., Device::Cuda),
// forward the fixture's uint8 input, relErr = ||ours - timm_float64|| / ||timm|| < 1e-2
// (bf16 weights and activations, fp32 accumulation). Then the same input repeated three
// times as one batch must give the same features for every copy (batched indexing of
// tokens, attention and position embeddings). The output buffer is NaN-poisoned first.
// Prints "N passed, M failed"; exit status 1 on any failure.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "../../engine/bf16.h"
#include "../../engine/engine.h"
#include "../../engine/safetensors.h"

using namespace flashslide;
namespace fs = std::filesystem;

static int g_pass = 0, g_fail = 0;
static void check(bool ok, const std::string& what) {
  (ok ? g_pass : g_fail)++;
  std::printf("  %s  %s\n", ok ? "ok  " : "FAIL", what.c_str());
  std::fflush(stdout);
}

static double relErr(const float* a, const float* b, size_t n, size_t* nanCount) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(a[i])) ++*nanCount;
    const double d = double(a[i]) - double(b[i]);
    num += d * d;
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "../test/fixtures/timm";
  std::vector<fs::path> ios;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.size() > 15 && n.compare(n.size() - 15, 15, ".io.safetensors") == 0) ios.push_back(e.path());
  }
  if (ios.empty()) check(false, "no fixtures in " + dir);
  for (const auto& io : ios) {
    const std::string ioPath = io.string();
    const std::string base = ioPath.substr(0, ioPath.size() - 15);
    const std::string name = fs::path(base).filename().string();
    try {
      auto eng = Engine::load(base + ".safetensors", ModelConfig::fromJsonFile(base + ".json"), Device::Cuda);
      TensorU8 in = readTensorU8(ioPath, "input_u8");
      TensorF32 ref = readTensorF32(ioPath, "features");
      const int B = int(in.shape[0]), H = int(in.shape[1]), W = int(in.shape[2]);
      std::vector<float> out(eng->outputSize(B, H, W), std::numeric_limits<float>::quiet_NaN());
      ForwardResult r = eng->forward(in.data.data(), B, H, W, out.data());
      size_t nan = 0;
      const double e = relErr(out.data(), ref.data.data(), out.size(), &nan);
      char buf[256];
      std::snprintf(buf, sizeof buf, "%s [%d, %d, %d] on %s: relErr %.2e vs timm float64, NaN %zu, %.1f ms",
                    name.c_str(), B, r.tokens, r.dim, eng->backendName(), e, nan, r.millis);
      check(nan == 0 && e < 1e-2, buf);

      // Three copies of image 0 as one batch: every copy must match the reference image 0.
      const size_t img = size_t(H) * W * 3, feat = out.size() / B;
      std::vector<uint8_t> rep(3 * img);
      for (int k = 0; k < 3; ++k) std::memcpy(rep.data() + k * img, in.data.data(), img);
      std::vector<float> out3(3 * feat, std::numeric_limits<float>::quiet_NaN());
      eng->forward(rep.data(), 3, H, W, out3.data());
      double worst = 0;
      size_t nan3 = 0;
      for (int k = 0; k < 3; ++k) worst = std::max(worst, relErr(out3.data() + k * feat, ref.data.data(), feat, &nan3));
      std::snprintf(buf, sizeof buf, "%s batch of 3 copies: worst relErr %.2e, NaN %zu", name.c_str(), worst, nan3);
      check(nan3 == 0 && worst < 1e-2, buf);

      // forwardRowsBf16 (the pipeline's path: rows gathered and rounded on the GPU) against
      // forward() + the host's BF16 rounding: the same bits. Rows from all three images, prefix
      // and patch tokens, out of order, one repeated.
      const int T = r.tokens, D = r.dim;
      const std::vector<int32_t> rows = {0, T - 1, T, 2 * T + 1, 3 * T - 1, 7 % T, 7 % T, T + T / 2};
      std::vector<uint16_t> sel(rows.size() * D, 0xdead);
      std::vector<double> sums(D, std::numeric_limits<double>::quiet_NaN());
      eng->forwardRowsBf16(rep.data(), 3, H, W, rows.data(), rows.size(), sel.data(), sums.data());
      size_t differ = 0;
      for (size_t i = 0; i < rows.size(); ++i)
        for (int j = 0; j < D; ++j) differ += sel[i * D + j] != toBf16(out3[size_t(rows[i]) * D + j]);
      // Column sums on the GPU against the host's loop over the same BF16 values, in row order.
      for (int j = 0; j < D; ++j) {
        double s = 0;
        for (size_t i = 0; i < rows.size(); ++i) s += fromBf16(sel[i * D + j]);
        differ += !(s == sums[j]);
      }
      std::snprintf(buf, sizeof buf, "%s forwardRowsBf16 (%zu rows gathered and summed on the GPU) vs forward + host BF16 and sums: %zu of %zu values differ",
                    name.c_str(), rows.size(), differ, sel.size() + size_t(D));
      check(differ == 0, buf);

      // Token dropping: a different random subset of each of the three images, against the CPU
      // engine's forwardKept (fp32, checked there against forward()); the BF16 rows against
      // forwardKept + host rounding.
      {
        auto cpu = Engine::load(base + ".safetensors", ModelConfig::fromJsonFile(base + ".json"), Device::Cpu);
        const int p = eng->arch().patchSize, Np = (H / p) * (W / p);
        std::vector<int32_t> offs = {0}, keep;
        uint32_t x = 12345;
        for (int b = 0; b < 3; ++b) {
          for (int n = 0; n < Np; ++n) {
            x = x * 1664525u + 1013904223u;
            if (n == 0 || (x >> 24) % (b + 2) != 0) keep.push_back(n);
          }
          offs.push_back(int32_t(keep.size()));
        }
        const KeptPatches kp{offs.data(), keep.data()};
        const KeptLayout lay = eng->keptLayout(3, H, W, kp);
        std::vector<float> g(lay.rows() * D, std::numeric_limits<float>::quiet_NaN()), c(g.size());
        ForwardResult rk = eng->forwardKept(rep.data(), 3, H, W, kp, g.data());
        cpu->forwardKept(rep.data(), 3, H, W, kp, c.data());
        size_t nanK = 0;
        const double ek = relErr(g.data(), c.data(), g.size(), &nanK);
        std::snprintf(buf, sizeof buf, "%s forwardKept (%d/%d/%d of %d patches, padded to %d tokens) vs the CPU engine: relErr %.2e, NaN %zu",
                      name.c_str(), offs[1], offs[2] - offs[1], offs[3] - offs[2], Np, rk.tokens, ek, nanK);
        check(nanK == 0 && ek < 1e-2, buf);
        const std::vector<int32_t> krows = {0, int32_t(lay.rows() - 1), int32_t(lay.start[1]), int32_t(lay.start[2] + 1), 3};
        std::vector<uint16_t> ksel(krows.size() * D);
        std::vector<double> ksums(D);
        eng->forwardKeptRowsBf16(rep.data(), 3, H, W, kp, krows.data(), krows.size(), ksel.data(), ksums.data());
        size_t kdiffer = 0;
        for (size_t i = 0; i < krows.size(); ++i)
          for (int j = 0; j < D; ++j) kdiffer += ksel[i * D + j] != toBf16(g[size_t(krows[i]) * D + j]);
        std::snprintf(buf, sizeof buf, "%s forwardKeptRowsBf16 vs forwardKept + host BF16: %zu values differ", name.c_str(), kdiffer);
        check(kdiffer == 0, buf);
      }
    } catch (const Error& e) {
      check(false, name + ": [" + e.code() + "] " + e.what());
    }
  }
  std::printf("\n%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
