// flashslide engine: CPU test executable (no framework).
//
//   ./test/test_cpu_engine [fixtures_dir]     (default $FLASHSLIDE_FIXTURES or
//                                              /work/shared/fixtures/timm)
// Sections: (1) flash attention vs the double-precision reference over head dims,
// odd/partial-tile lengths and batch; (2) pos-embed resampling: identity, hand-computed
// Pillow-bicubic weights, separability; (3) end-to-end parity with timm on every
// fixture (<name>.json config, <name>.safetensors weights, <name>.io.safetensors
// input_u8/features), plus F16/BF16 re-encodings of one fixture; (4) error paths:
// each must throw flashslide::Error with the right code and a message naming the
// problem; (5) nearest-neighbour distances (blocked sgemm + row minimum) against the plain
// double loop; (6) the self scorer's centred float32 products against double loops.
// Prints "N passed, M failed"; exit status 1 on any failure.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../cpu/attention_cpu.h"
#include "../cpu/centered_gemm_cpu.h"
#include "../cpu/knn_cpu.h"
#include "../engine/engine.h"
#include "../engine/json.h"
#include "../engine/pos_embed.h"
#include "../engine/safetensors.h"

using namespace flashslide;
namespace fs = std::filesystem;

static int g_pass = 0, g_fail = 0;

static void check(bool ok, const std::string& what) {
  if (ok) {
    ++g_pass;
    std::printf("  ok    %s\n", what.c_str());
  } else {
    ++g_fail;
    std::printf("  FAIL  %s\n", what.c_str());
  }
}

// Runs fn, expects flashslide::Error with `code` and a message containing `needle`.
static void expectError(const std::string& what, const std::string& code, const std::string& needle,
                        const std::function<void()>& fn) {
  try {
    fn();
    check(false, what + ": no exception thrown");
  } catch (const Error& e) {
    bool ok = e.code() == code && std::string(e.what()).find(needle) != std::string::npos;
    check(ok, what + " -> [" + e.code() + "] " + e.what());
  } catch (const std::exception& e) {
    check(false, what + ": wrong exception type: " + e.what());
  }
}

struct ErrStats {
  double maxAbs = 0, rel = 0, maxRel = 0;
};
static ErrStats compare(const float* a, const float* b, size_t n) {
  double num = 0, den = 0, maxAbs = 0, maxRef = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
    maxAbs = std::max(maxAbs, std::fabs(d));
    maxRef = std::max(maxRef, std::fabs(static_cast<double>(b[i])));
  }
  ErrStats s;
  s.maxAbs = maxAbs;
  s.rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  s.maxRel = maxRef > 0 ? maxAbs / maxRef : maxAbs;
  if (!std::isfinite(num)) s.rel = s.maxRel = s.maxAbs = INFINITY;
  return s;
}

// ------------------------------------------------------------------ (1) attention
static void testAttention() {
  std::printf("[attention] flash vs reference (max|a-b|/max|b| < 1e-5)\n");
  struct Case {
    int B, T, H, d;
  };
  const Case cases[] = {{1, 1, 1, 64},   {1, 3, 2, 64},    {1, 17, 3, 64},   {1, 64, 2, 64},
                        {1, 65, 1, 80},  {1, 197, 3, 64},  {2, 261, 2, 80},  {1, 300, 2, 128},
                        {1, 513, 1, 64}, {1, 1031, 2, 80}, {1, 777, 1, 128}, {1, 50, 2, 40}};
  std::mt19937 rng(1234);
  for (const Case& c : cases) {
    const int D = c.H * c.d;
    std::vector<float> qkv(static_cast<size_t>(c.B) * c.T * 3 * D);
    // Scores with std ~3 after scaling: peaked softmax rows, exercising the rescale path.
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (auto& v : qkv) v = nd(rng) * 1.5f;
    std::vector<float> r(static_cast<size_t>(c.B) * c.T * D);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.d));
    attention_reference(qkv.data(), c.B, c.T, c.H, c.d, scale, r.data());
    for (AttentionIsa isa : {AttentionIsa::Baseline, AttentionIsa::Avx2, AttentionIsa::Avx512}) {
      if (!attentionIsaSupported(isa)) {
        std::printf("  skip  %s not supported by this CPU\n", attentionIsaName(isa));
        continue;
      }
      std::vector<float> a(r.size(), NAN);
      AttentionWorkspace ws;
      attention_flash(qkv.data(), c.B, c.T, c.H, c.d, scale, a.data(), ws, isa);
      ErrStats e = compare(a.data(), r.data(), a.size());
      char buf[200];
      AttentionTiles tl = attentionTiles(c.d);
      std::snprintf(buf, sizeof buf, "B=%d T=%d H=%d d=%d tiles %dx%d %-18s maxAbs=%.2e maxRel=%.2e rel=%.2e",
                    c.B, c.T, c.H, c.d, tl.blockQ, tl.blockK, attentionIsaName(isa), e.maxAbs, e.maxRel, e.rel);
      check(e.maxRel < 1e-5, buf);
    }
  }
}

// ------------------------------------------------------------------ (2) pos embed
static void testPosEmbed() {
  std::printf("[pos_embed] Pillow-bicubic antialias resampling\n");
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  {  // identity: same grid -> bit-identical, prefix preserved
    const int P = 2, g = 5, D = 8;
    std::vector<float> pos((P + g * g) * D);
    for (auto& v : pos) v = nd(rng);
    std::vector<float> out = resamplePosEmbed(pos.data(), P, g, g, D, g, g);
    check(out == pos, "identity when the grid equals the checkpoint grid (prefix kept)");
  }
  {  // upsampling 2 -> 4, hand-computed Keys(a=-0.5) weights, renormalised at borders
    std::vector<float> src = {0.0f, 1.0f}, dst(4);
    resampleGridBicubicAA(src.data(), 1, 2, 1, 1, 4, dst.data());
    const double want[4] = {-0.0703125 / 0.796875, 0.2265625 / 1.09375, 1 - 0.2265625 / 1.09375,
                            1 + 0.0703125 / 0.796875};
    double err = 0;
    for (int i = 0; i < 4; ++i) err = std::max(err, std::fabs(dst[i] - want[i]));
    check(err < 1e-6, "upsample 2->4 matches hand-computed weights (err " + std::to_string(err) + ")");
  }
  {  // downsampling 4 -> 2: antialias widens the kernel to support 4, scaled by out/in
    std::vector<float> src = {0, 1, 2, 3}, dst(2);
    resampleGridBicubicAA(src.data(), 4, 1, 1, 2, 1, dst.data());  // along H this time
    const double w0 = 1.109375 / 1.890625;  // taps 0..3: f(-.25), f(.25), f(.75), f(1.25)
    double err = std::max(std::fabs(dst[0] - w0), std::fabs(dst[1] - (3 - w0)));
    check(err < 1e-6, "downsample 4->2 (antialias) matches hand-computed weights (err " +
                          std::to_string(err) + ")");
  }
  {  // 2-D = separable product of the 1-D weight matrices; constant field stays constant
    const int ih = 3, iw = 4, oh = 5, ow = 2, D = 3;
    std::vector<float> src(ih * iw * D), dst(oh * ow * D);
    for (auto& v : src) v = nd(rng);
    resampleGridBicubicAA(src.data(), ih, iw, D, oh, ow, dst.data());
    AxisWeights wy = bicubicAAWeights(ih, oh), wx = bicubicAAWeights(iw, ow);
    double err = 0;
    for (int y = 0; y < oh; ++y)
      for (int x = 0; x < ow; ++x)
        for (int c = 0; c < D; ++c) {
          double s = 0;
          for (int a = 0; a < wy.count[y]; ++a)
            for (int b = 0; b < wx.count[x]; ++b)
              s += wy.weight[y * wy.maxTaps + a] * wx.weight[x * wx.maxTaps + b] *
                   src[((wy.first[y] + a) * iw + wx.first[x] + b) * D + c];
          err = std::max(err, std::fabs(s - dst[(y * ow + x) * D + c]));
        }
    check(err < 1e-5, "3x4 -> 5x2 equals the outer product of 1-D weights");
    std::vector<float> ones(ih * iw, 2.5f), o2(oh * ow);
    resampleGridBicubicAA(ones.data(), ih, iw, 1, oh, ow, o2.data());
    double cerr = 0;
    for (float v : o2) cerr = std::max(cerr, std::fabs(v - 2.5));
    check(cerr < 1e-6, "constant field preserved (weights renormalised to 1)");
  }
}

// ------------------------------------------------------------------ helpers for files
struct RawTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
static std::vector<RawTensor> readAll(const std::string& path) {
  SafetensorsReader r(path);
  std::vector<RawTensor> out;
  for (const auto& t : r.tensors()) out.push_back({t.name, t.dtype, t.shape, r.readRaw(t)});
  return out;
}
static void writeAll(const std::string& path, const std::vector<RawTensor>& ts) {
  std::vector<TensorToWrite> w;
  for (const auto& t : ts) w.push_back({t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size()});
  writeSafetensors(path, w);
}
static uint16_t floatToBf16(float f) {  // round to nearest even
  uint32_t b;
  std::memcpy(&b, &f, 4);
  b += 0x7FFF + ((b >> 16) & 1);
  return static_cast<uint16_t>(b >> 16);
}
static uint16_t floatToHalf(float f) {  // normal range is enough for these weights
  uint32_t b;
  std::memcpy(&b, &f, 4);
  uint32_t sign = (b >> 16) & 0x8000;
  int exp = static_cast<int>((b >> 23) & 0xFF) - 127 + 15;
  uint32_t man = b & 0x7FFFFF;
  if (exp <= 0) return static_cast<uint16_t>(sign);  // flush tiny values
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7C00);
  uint32_t h = sign | (exp << 10) | (man >> 13);
  uint32_t rem = man & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;
  return static_cast<uint16_t>(h);
}
static void reencode(std::vector<RawTensor>& ts, const std::string& dtype) {
  for (auto& t : ts) {
    if (t.dtype != "F32") continue;
    size_t n = t.bytes.size() / 4;
    std::vector<uint8_t> nb(n * 2);
    for (size_t i = 0; i < n; ++i) {
      float f;
      std::memcpy(&f, t.bytes.data() + 4 * i, 4);
      uint16_t h = dtype == "BF16" ? floatToBf16(f) : floatToHalf(f);
      std::memcpy(nb.data() + 2 * i, &h, 2);
    }
    t.bytes = std::move(nb);
    t.dtype = dtype;
  }
}

struct Fixture {
  std::string name, weights, io, config;
};

static ErrStats runFixture(const Fixture& f, const std::string& weightsPath, bool print,
                           std::string* describe = nullptr) {
  ModelConfig cfg = ModelConfig::fromJsonFile(f.config);
  auto eng = Engine::load(weightsPath, cfg);
  if (describe) *describe = eng->arch().describe();
  TensorU8 in = readTensorU8(f.io, "input_u8");
  TensorF32 ref = readTensorF32(f.io, "features");
  const int B = static_cast<int>(in.shape[0]), H = static_cast<int>(in.shape[1]),
            W = static_cast<int>(in.shape[2]);
  std::vector<float> out(eng->outputSize(B, H, W));
  if (out.size() != ref.data.size())
    throw std::runtime_error("output size " + std::to_string(out.size()) + " != reference " +
                             std::to_string(ref.data.size()));
  ForwardResult r = eng->forward(in.data.data(), B, H, W, out.data());
  ErrStats e = compare(out.data(), ref.data.data(), out.size());
  if (print)
    std::printf("        %s: B=%d %dx%d T=%d D=%d  %.1f ms\n", f.name.c_str(), B, H, W, r.tokens,
                r.dim, r.millis);
  return e;
}

// ------------------------------------------------------------------ (3) parity
static std::vector<Fixture> findFixtures(const std::string& dir) {
  std::vector<Fixture> fx;
  std::error_code ec;
  for (const auto& ent : fs::directory_iterator(dir, ec)) {
    const std::string p = ent.path().string();
    if (ent.path().extension() != ".json") continue;
    std::string base = p.substr(0, p.size() - 5);
    Fixture f{ent.path().stem().string(), base + ".safetensors", base + ".io.safetensors", p};
    if (fs::exists(f.weights) && fs::exists(f.io)) fx.push_back(f);
  }
  std::sort(fx.begin(), fx.end(), [](const Fixture& a, const Fixture& b) { return a.name < b.name; });
  return fx;
}

static void testParity(const std::vector<Fixture>& fx, const std::string& tmp) {
  std::printf("[parity] timm forward_features fixtures (relErr = ||a-b||/||b|| < 1e-4)\n");
  check(!fx.empty(), "found fixtures");
  for (const auto& f : fx) {
    try {
      std::string desc;
      ErrStats e = runFixture(f, f.weights, true, &desc);
      std::printf("        arch: %s\n", desc.c_str());
      char buf[200];
      std::snprintf(buf, sizeof buf, "%s: maxAbsErr=%.3e relErr=%.3e", f.name.c_str(), e.maxAbs, e.rel);
      check(e.rel < 1e-4, buf);
    } catch (const std::exception& ex) {
      check(false, f.name + ": exception: " + ex.what());
    }
  }
  // Half-precision checkpoints load through the same path; the error is then dominated
  // by the weight rounding itself.
  if (!fx.empty()) {
    for (const char* dt : {"BF16", "F16"}) {
      try {
        auto ts = readAll(fx.front().weights);
        reencode(ts, dt);
        std::string p = tmp + "/weights_" + dt + ".safetensors";
        writeAll(p, ts);
        ErrStats e = runFixture(fx.front(), p, false);
        char buf[200];
        std::snprintf(buf, sizeof buf, "%s re-encoded as %s loads and runs: relErr=%.3e (< %g)",
                      fx.front().name.c_str(), dt, e.rel, dt[0] == 'B' ? 3e-2 : 3e-3);
        check(e.rel < (dt[0] == 'B' ? 3e-2 : 3e-3), buf);
      } catch (const std::exception& ex) {
        check(false, std::string(dt) + " re-encode: exception: " + ex.what());
      }
    }
  }
}

// Same engine, two threads: forward is serialised, results must be identical.
static void testConcurrency(const std::vector<Fixture>& fx) {
  std::printf("[threads] concurrent forward() on one Engine\n");
  if (fx.empty()) return;
  const Fixture& f = fx.front();
  auto eng = Engine::load(f.weights, ModelConfig::fromJsonFile(f.config));
  TensorU8 in = readTensorU8(f.io, "input_u8");
  const int B = 1, H = static_cast<int>(in.shape[1]), W = static_cast<int>(in.shape[2]);
  std::vector<float> a(eng->outputSize(B, H, W)), b(a.size()), c(a.size());
  eng->forward(in.data.data(), B, H, W, a.data());
  std::thread t1([&] { eng->forward(in.data.data(), B, H, W, b.data()); });
  std::thread t2([&] { eng->forward(in.data.data(), B, H, W, c.data()); });
  t1.join();
  t2.join();
  check(a == b && a == c, "two threads on one engine give bit-identical results");
  // Two independent engines in two threads (the addon may run one per worker).
  auto eng2 = Engine::load(f.weights, ModelConfig::fromJsonFile(f.config));
  std::vector<float> d(a.size()), e(a.size());
  std::thread t3([&] { eng->forward(in.data.data(), B, H, W, d.data()); });
  std::thread t4([&] { eng2->forward(in.data.data(), B, H, W, e.data()); });
  t3.join();
  t4.join();
  check(d == a && e == a, "two engines in two threads give bit-identical results");
  // What a device backend leaves on the host: enough for arch() and the pos-embed resampling.
  {
    Weights full = loadWeights(SafetensorsReader(f.weights), ModelConfig::fromJsonFile(f.config));
    Weights host = hostPart(full);
    check(host.blocks.empty() && host.patchW.empty() && host.posEmbed == full.posEmbed &&
              host.clsToken == full.clsToken && host.regToken == full.regToken &&
              host.arch.embedDim == full.arch.embedDim && host.bytes() < full.bytes() / 4,
          "hostPart keeps the arch, tokens and pos embed and drops the layers (" +
              std::to_string(host.bytes()) + " of " + std::to_string(full.bytes()) + " bytes)");
  }
  // A second grid size and back: the pos-embed cache must key on the grid.
  const int p = eng->arch().patchSize;
  std::vector<uint8_t> small(static_cast<size_t>(4 * p) * (6 * p) * 3, 128);
  std::vector<float> so(eng->outputSize(1, 4 * p, 6 * p));
  eng->forward(small.data(), 1, 4 * p, 6 * p, so.data());
  eng->forward(in.data.data(), B, H, W, b.data());
  check(b == a, "results unchanged after running another image size (pos-embed cache)");
}

// ------------------------------------------------------------------ (3b) token dropping
// forwardKept against forward(): keeping every patch is forward() bit for bit; a kept token's
// output does not depend on the pixels of dropped patches (nor on the other images of the
// batch), and does depend on which patches are dropped; the BF16 rows are forwardKept's.
static void testKept(const std::vector<Fixture>& fx) {
  std::printf("[kept] token dropping (forwardKept)\n");
  if (fx.empty()) return;
  for (const Fixture& f : fx) {
    auto eng = Engine::load(f.weights, ModelConfig::fromJsonFile(f.config));
    const ModelArch& a = eng->arch();
    TensorU8 in = readTensorU8(f.io, "input_u8");
    const int H = static_cast<int>(in.shape[1]), W = static_cast<int>(in.shape[2]), p = a.patchSize;
    const int Np = (H / p) * (W / p), P = a.numPrefixTokens, D = a.embedDim;
    const size_t img = static_cast<size_t>(H) * W * 3;
    std::vector<uint8_t> two(2 * img);
    std::memcpy(two.data(), in.data.data(), img);
    std::memcpy(two.data() + img, in.data.data() + (in.shape[0] > 1 ? img : 0), img);
    for (size_t i = 0; i < img; ++i) two[img + i] = static_cast<uint8_t>(255 - two[img + i]);  // a second, different image

    // (a) Every patch kept: forward() exactly.
    std::vector<int32_t> offs = {0, Np, 2 * Np}, all;
    for (int b = 0; b < 2; ++b)
      for (int n = 0; n < Np; ++n) all.push_back(n);
    std::vector<float> dense(eng->outputSize(2, H, W)), keptAll(dense.size());
    eng->forward(two.data(), 2, H, W, dense.data());
    eng->forwardKept(two.data(), 2, H, W, KeptPatches{offs.data(), all.data()}, keptAll.data());
    check(dense == keptAll, f.name + ": every patch kept = forward(), bit for bit");

    // (b) A random subset per image (different counts).
    std::mt19937 rng(17);
    std::vector<int32_t> sub, subOffs = {0};
    for (int b = 0; b < 2; ++b) {
      for (int n = 0; n < Np; ++n)
        if (rng() % 3 != 0 || n == 0) sub.push_back(n);
      subOffs.push_back(static_cast<int32_t>(sub.size()));
    }
    const KeptPatches kp{subOffs.data(), sub.data()};
    const KeptLayout lay = eng->keptLayout(2, H, W, kp);
    check(lay.rows() == static_cast<size_t>(2 * P + subOffs[2]), f.name + ": layout has prefix + kept rows per image");
    std::vector<float> k1(lay.rows() * D), k2(k1.size()), k3(k1.size());
    eng->forwardKept(two.data(), 2, H, W, kp, k1.data());
    // Dropped patches' pixels changed: nothing of it reaches the kept tokens.
    std::vector<uint8_t> scrambled = two;
    for (int b = 0; b < 2; ++b)
      for (int n = 0; n < Np; ++n) {
        if (std::binary_search(sub.begin() + subOffs[b], sub.begin() + subOffs[b + 1], n)) continue;
        const int gy = n / (W / p), gx = n % (W / p);
        for (int y = 0; y < p; ++y)
          for (int x = 0; x < p * 3; ++x) scrambled[b * img + (static_cast<size_t>(gy * p + y) * W + gx * p) * 3 + x] = static_cast<uint8_t>(rng());
      }
    eng->forwardKept(scrambled.data(), 2, H, W, kp, k2.data());
    check(k1 == k2, f.name + ": dropped patches' pixels do not reach the kept tokens");
    // Image 1 alone = image 1 within the batch.
    std::vector<int32_t> offs1 = {0, subOffs[2] - subOffs[1]};
    eng->forwardKept(two.data() + img, 1, H, W, KeptPatches{offs1.data(), sub.data() + subOffs[1]}, k3.data());
    check(std::equal(k3.begin(), k3.begin() + (lay.rows() - lay.start[1]) * D, k1.begin() + lay.start[1] * D),
          f.name + ": an image's kept output does not depend on the rest of the batch");
    // Dropping is real: the kept tokens differ from the same tokens of the full forward.
    double diff = 0;
    for (int j = 0; j < subOffs[1]; ++j)
      for (int c = 0; c < D; ++c)
        diff = std::max(diff, std::fabs(double(k1[(P + j) * D + c]) - dense[(P + sub[j]) * D + c]));
    check(diff > 1e-3, f.name + ": dropping patches changes the kept tokens (max diff " + std::to_string(diff) + ")");
    // BF16 rows: forwardKept's rows, rounded; sums in row order.
    std::vector<int32_t> rows = {0, static_cast<int32_t>(lay.rows() - 1), static_cast<int32_t>(P)};
    std::vector<uint16_t> bf(rows.size() * D);
    std::vector<double> sums(D);
    eng->forwardKeptRowsBf16(two.data(), 2, H, W, kp, rows.data(), rows.size(), bf.data(), sums.data());
    bool same = true;
    for (size_t i = 0; i < rows.size(); ++i)
      for (int c = 0; c < D; ++c) same = same && bf[i * D + c] == floatToBf16(k1[rows[i] * D + c]);
    check(same, f.name + ": forwardKeptRowsBf16 = forwardKept's rows in BF16");
  }
  auto eng = Engine::load(fx.front().weights, ModelConfig::fromJsonFile(fx.front().config));
  const int p = eng->arch().patchSize;
  std::vector<uint8_t> img(static_cast<size_t>(2 * p) * (2 * p) * 3);
  std::vector<float> out(1 << 16);
  std::vector<int32_t> o1 = {0, 2}, unsorted = {3, 1}, o0 = {0, 0}, far = {0, 4};
  expectError("kept list not increasing", "bad_input", "strictly increasing",
              [&] { eng->forwardKept(img.data(), 1, 2 * p, 2 * p, KeptPatches{o1.data(), unsorted.data()}, out.data()); });
  expectError("kept patch outside the grid", "bad_input", "in [0, 4)",
              [&] { eng->forwardKept(img.data(), 1, 2 * p, 2 * p, KeptPatches{o1.data(), far.data()}, out.data()); });
  expectError("an image keeping nothing", "bad_input", "keeps no patch",
              [&] { eng->forwardKept(img.data(), 1, 2 * p, 2 * p, KeptPatches{o0.data(), far.data()}, out.data()); });
}

// ------------------------------------------------------------------ (4) errors
static void testErrors(const std::vector<Fixture>& fx, const std::string& tmp) {
  std::printf("[errors] each failure is a flashslide::Error with a code and a clear message\n");
  expectError("json: duplicate key", "bad_config", "duplicate key",
              [] { ModelConfig::fromJson("{\"num_heads\": 3, \"num_heads\": 4}", "cfg.json"); });
  {
    json::Value v = json::parse("{\"a\": [1, -2, 3.5e2, \"x\\u00e9\\n\"], \"b\": {\"c\": null, \"d\": true}}");
    bool ok = v.find("a") && v.find("a")->arr.size() == 4 && v.find("a")->arr[1].i64 == -2 &&
              v.find("a")->arr[2].num == 350.0 && v.find("a")->arr[3].str == "x\xc3\xa9\n" &&
              v.find("b")->find("d")->b;
    check(ok, "json: nested values, escapes, ints and floats");
  }
  if (fx.empty()) return;
  const Fixture& f = fx.front();
  ModelConfig cfg = ModelConfig::fromJsonFile(f.config);
  const uint64_t size = fs::file_size(f.weights);

  auto truncatedCopy = [&](const std::string& out, uint64_t n) {
    std::ifstream in(f.weights, std::ios::binary);
    std::vector<char> buf(n);
    in.read(buf.data(), static_cast<std::streamsize>(n));
    std::ofstream o(out, std::ios::binary);
    o.write(buf.data(), static_cast<std::streamsize>(n));
  };
  const std::string t1 = tmp + "/truncated_header.safetensors";
  truncatedCopy(t1, 1000);
  expectError("truncated inside the header", "bad_file", "truncated", [&] { Engine::load(t1, cfg); });
  const std::string t2 = tmp + "/truncated_data.safetensors";
  truncatedCopy(t2, size - 1000);
  expectError("truncated inside the tensor data", "bad_file", "truncated: header says",
              [&] { Engine::load(t2, cfg); });
  const std::string t3 = tmp + "/not_safetensors.bin";
  {
    std::ofstream o(t3, std::ios::binary);
    o << "PK\x03\x04 this is a zip file, not safetensors....................";
  }
  expectError("not a safetensors file", "bad_file", "convert it to safetensors", [&] { Engine::load(t3, cfg); });
  expectError("nonexistent file", "bad_file", "cannot open",
              [&] { Engine::load(tmp + "/does_not_exist.safetensors", cfg); });

  auto ts = readAll(f.weights);
  {
    auto m = ts;
    m.erase(std::remove_if(m.begin(), m.end(), [](const RawTensor& t) { return t.name == "blocks.1.mlp.fc2.bias"; }),
            m.end());
    const std::string p = tmp + "/missing.safetensors";
    writeAll(p, m);
    expectError("missing tensor", "missing_tensor", "blocks.1.mlp.fc2.bias", [&] { Engine::load(p, cfg); });
  }
  {
    auto m = ts;
    for (auto& t : m)
      if (t.name == "blocks.1.attn.proj.weight") {  // [D, D] -> [D, D-1]
        t.shape[1] -= 1;
        t.bytes.resize(static_cast<size_t>(t.shape[0] * t.shape[1]) * 4);
      }
    const std::string p = tmp + "/shape.safetensors";
    writeAll(p, m);
    expectError("shape mismatch", "shape_mismatch", "\"blocks.1.attn.proj.weight\" has shape",
                [&] { Engine::load(p, cfg); });
  }
  {
    auto m = ts;
    for (auto& t : m)
      if (t.name == "pos_embed") {  // F32 -> F64
        size_t n = t.bytes.size() / 4;
        std::vector<uint8_t> nb(n * 8);
        for (size_t i = 0; i < n; ++i) {
          float v;
          std::memcpy(&v, t.bytes.data() + 4 * i, 4);
          double d = v;
          std::memcpy(nb.data() + 8 * i, &d, 8);
        }
        t.bytes = nb;
        t.dtype = "F64";
      }
    const std::string p = tmp + "/dtype.safetensors";
    writeAll(p, m);
    expectError("unsupported dtype", "unsupported_dtype", "\"pos_embed\" has dtype F64",
                [&] { Engine::load(p, cfg); });
  }
  {
    auto m = ts;
    m.push_back({"blocks.0.attn.q_norm.weight", "F32", {64}, std::vector<uint8_t>(256)});
    const std::string p = tmp + "/qknorm.safetensors";
    writeAll(p, m);
    expectError("unknown layer (qk-norm)", "unsupported_arch", "blocks.0.attn.q_norm.weight",
                [&] { Engine::load(p, cfg); });
  }
  {
    ModelConfig c2 = cfg;
    c2.numHeads = 0;
    expectError("num_heads missing", "bad_config", "num_heads", [&] { Engine::load(f.weights, c2); });
    c2.numHeads = 7;
    expectError("num_heads does not divide D", "bad_config", "does not divide",
                [&] { Engine::load(f.weights, c2); });
    ModelConfig c3 = cfg;
    c3.patchSize = 8;
    expectError("config contradicts derived patch size", "bad_config", "patch_size 8",
                [&] { Engine::load(f.weights, c3); });
  }
  {
    auto eng = Engine::load(f.weights, cfg);
    const int p = eng->arch().patchSize;
    std::vector<uint8_t> img(static_cast<size_t>(2 * p + 3) * (2 * p) * 3);
    std::vector<float> out(1 << 20);
    expectError("image size not a multiple of the patch", "bad_input", "not a positive multiple",
                [&] { eng->forward(img.data(), 1, 2 * p + 3, 2 * p, out.data()); });
    expectError("batch 0", "bad_input", "batch size", [&] { eng->forward(img.data(), 0, 2 * p, 2 * p, out.data()); });
    expectError("tokens() on a bad size", "bad_input", "patch size", [&] { eng->tokens(p - 1, p); });
  }
  {
    const std::string p = tmp + "/io.safetensors";
    uint8_t px[6] = {1, 2, 3, 4, 5, 6};
    float fl[2] = {0.5f, -2.0f};
    writeSafetensors(p, {{"input_u8", "U8", {1, 1, 2, 3}, px, 6}, {"features", "F32", {1, 2}, fl, 8}});
    TensorU8 u = readTensorU8(p, "input_u8");
    TensorF32 t = readTensorF32(p, "features");
    check(u.shape == std::vector<int64_t>({1, 1, 2, 3}) && u.data[5] == 6 && t.data[1] == -2.0f,
          "io tensor round trip (U8 + F32) with the public readers");
    expectError("reading U8 as float", "unsupported_dtype", "input_u8", [&] { readTensorF32(p, "input_u8"); });
    expectError("missing io tensor", "missing_tensor", "\"nope\"", [&] { readTensorU8(p, "nope"); });
  }
}

// ------------------------------------------------------------------ (5) nearest neighbour
static void testNearestNeighbour() {
  std::printf("[knn] CpuNearestIndex (sgemm blocks + row min) vs the double loop\n");
  struct Case {
    int64_t bank, queries;
    int dim;
    float offset;  // common shift of every row: ViT embeddings share a large mean
    KnnCpuOptions blocks;
  };
  const Case cases[] = {{1, 1, 1, 0, {}},           {7, 5, 3, 0, {}},           {131, 71, 37, 0, {32, 64}},
                        {300, 1000, 64, 0, {16, 100}}, {1000, 513, 384, 0, {}},  {2000, 300, 1024, 0, {}},
                        {500, 200, 192, 50, {}},     {4097, 257, 17, 3, {64, 1000}}};
  std::mt19937 rng(77);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const Case& c : cases) {
    std::vector<float> bank(static_cast<size_t>(c.bank) * c.dim), q(static_cast<size_t>(c.queries) * c.dim);
    for (auto& v : bank) v = nd(rng) + c.offset;
    for (auto& v : q) v = nd(rng) + c.offset;
    // Some queries are exact copies of bank rows: their distance is 0, not a negative rounding error.
    const int64_t dups = std::min<int64_t>(3, std::min(c.queries, c.bank));
    for (int64_t i = 0; i < dups; ++i)
      std::copy(bank.begin() + (c.bank - 1 - i) * c.dim, bank.begin() + (c.bank - i) * c.dim, q.begin() + i * c.dim);
    std::vector<float> ref(static_cast<size_t>(c.queries)), got(ref.size(), NAN), again(ref.size(), NAN);
    nearestDistancesReference(bank.data(), c.bank, q.data(), c.queries, c.dim, ref.data());
    CpuNearestIndex index(bank.data(), c.bank, c.dim, c.blocks);
    index.search(q.data(), c.queries, got.data());
    index.search(q.data(), c.queries, again.data());
    // Squared-distance error relative to the centred rows' energy (2 dim for unit normals):
    // the scale of the float32 products the formula subtracts.
    double maxErr2 = 0, maxRel = 0;
    bool finite = true;
    for (int64_t i = 0; i < c.queries; ++i) {
      finite = finite && std::isfinite(got[i]);
      maxErr2 = std::max(maxErr2, std::fabs(double(got[i]) * got[i] - double(ref[i]) * ref[i]) / (2.0 * c.dim));
      if (ref[i] > 0.5) maxRel = std::max(maxRel, std::fabs(double(got[i]) - ref[i]) / ref[i]);
    }
    double dupMax = 0;
    for (int64_t i = 0; i < dups; ++i) dupMax = std::max(dupMax, double(got[i]));
    char buf[220];
    std::snprintf(buf, sizeof buf,
                  "bank %5lld x queries %5lld x dim %4d offset %2.0f blocks %dx%d: d^2 err/(2 dim) %.1e, rel %.1e, dup %.1e",
                  static_cast<long long>(c.bank), static_cast<long long>(c.queries), c.dim, c.offset,
                  c.blocks.queryBlock, c.blocks.bankBlock, maxErr2, maxRel, dupMax);
    check(finite && maxErr2 < 1e-5 && maxRel < 1e-4 && dupMax < 1e-2 * std::sqrt(c.dim) && got == again, buf);
  }
  expectError("empty bank", "bad_input", "non-empty bank", [] {
    float x = 0;
    CpuNearestIndex(&x, 0, 1);
  });
}

// ------------------------------------------------------------------ (6) centred products
static void testCenteredGemm() {
  std::printf("[centred gemm] projectCenteredCpu / combineCenteredCpu vs double loops\n");
  struct Case {
    int64_t n;
    int dim, k;
  };
  const Case cases[] = {{1, 1, 1}, {257, 37, 5}, {1000, 192, 40}, {700, 1024, 33}, {300, 64, 0}};
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const Case& c : cases) {
    std::vector<float> x(static_cast<size_t>(c.n) * c.dim), basis(static_cast<size_t>(c.k) * c.dim),
        weights(static_cast<size_t>(c.k) * c.n);
    std::vector<double> center(static_cast<size_t>(c.dim));
    for (auto& v : center) v = 30.0 + nd(rng);  // a large common offset, removed exactly by centring
    for (int64_t i = 0; i < c.n; ++i)
      for (int j = 0; j < c.dim; ++j) x[i * c.dim + j] = static_cast<float>(center[j] + nd(rng));
    for (auto& v : basis) v = nd(rng);
    for (auto& v : weights) v = nd(rng);
    std::vector<double> refP(static_cast<size_t>(c.n) * c.k, 0.0), refN(static_cast<size_t>(c.n), 0.0),
        refC(static_cast<size_t>(c.k) * c.dim, 0.0);
    for (int64_t i = 0; i < c.n; ++i) {
      for (int j = 0; j < c.dim; ++j) {
        const double v = double(x[i * c.dim + j]) - center[j];
        refN[i] += v * v;
        for (int a = 0; a < c.k; ++a) {
          refP[i * c.k + a] += v * basis[a * c.dim + j];
          refC[a * c.dim + j] += double(weights[a * c.n + i]) * v;
        }
      }
    }
    std::vector<float> p(refP.size(), NAN), comb(refC.size(), NAN);
    std::vector<double> norms(refN.size(), NAN);
    projectCenteredCpu(x.data(), c.n, c.dim, center.data(), basis.data(), c.k, p.data(), norms.data());
    combineCenteredCpu(x.data(), c.n, c.dim, center.data(), weights.data(), c.k, comb.data());
    auto rel = [](const auto& a, const std::vector<double>& b) {
      double num = 0, den = 0;
      for (size_t i = 0; i < b.size(); ++i) {
        const double d = double(a[i]) - b[i];
        num += d * d;
        den += b[i] * b[i];
      }
      return b.empty() ? 0.0 : (den > 0 ? std::sqrt(num / den) : std::sqrt(num));
    };
    const double eP = rel(p, refP), eN = rel(norms, refN), eC = rel(comb, refC);
    char buf[200];
    std::snprintf(buf, sizeof buf, "n %4lld dim %4d k %2d: project relErr %.1e, sqNorms %.1e, combine %.1e",
                  static_cast<long long>(c.n), c.dim, c.k, eP, eN, eC);
    check(eP < 1e-5 && eN < 1e-6 && eC < 1e-5, buf);
  }
}

int main(int argc, char** argv) {
  std::string dir = "/work/shared/fixtures/timm";
  if (const char* e = std::getenv("FLASHSLIDE_FIXTURES")) dir = e;
  if (argc > 1) dir = argv[1];
  const std::string tmp = (fs::temp_directory_path() / ("flashslide_test_" + std::to_string(getpid()))).string();
  fs::create_directories(tmp);

  testAttention();
  testPosEmbed();
  testNearestNeighbour();
  testCenteredGemm();
  std::vector<Fixture> fx = findFixtures(dir);
  testParity(fx, tmp);
  testConcurrency(fx);
  testKept(fx);
  testErrors(fx, tmp);

  std::error_code ec;
  fs::remove_all(tmp, ec);
  std::printf("\n%d passed, %d failed\n", g_pass, g_fail);
  return g_fail == 0 ? 0 : 1;
}
