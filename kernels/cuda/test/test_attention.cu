// flashslide CUDA backend: flash attention correctness test (needs a GPU; no cuBLAS).
//
//   ./build/cuda/test_attention            every head dim, every compiled tile variant
//
// For each head dim (64, 80, 128) and each shape (odd N, N < 64, N = 1, tile-boundary N,
// and N = 65541, the token count of a 4096 px region at patch 16 plus cls and 4 registers):
//   * fresh random bf16 qkv in the engine's layout [B, N, 3, H, d] (sigma 1, or 2 for
//     peaky softmaxes whose logits span ~+-16);
//   * a float64 CPU reference on the bf16-rounded inputs: every row when the problem is
//     small, otherwise a sample per (b, h) that includes rows 0, 1, N-1 and the 64/128-row
//     tile boundaries;
//   * the plain fp32 reference kernel (attention_ref.cu) on every row, itself checked
//     against float64 first;
//   * each flash variant, with the output and a guard region behind it poisoned with 0xFF
//     bytes (bf16 NaN) before the launch: NaN never passes, an unwritten row shows up as
//     NaN, and a write past the end shows up in the guard.
// Pass: relErr = ||out - ref|| / ||ref|| < 1e-2 against both references, no NaN, guard
// intact. Prints "N passed, M failed"; exit status 1 on any failure.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "../cuda_check.h"
#include "../flash_attn.h"

using namespace flashslide;
using namespace flashslide::cuda;

namespace {

int g_pass = 0, g_fail = 0;

void check(bool ok, const std::string& what) {
  (ok ? g_pass : g_fail)++;
  std::printf("  %s  %s\n", ok ? "ok  " : "FAIL", what.c_str());
  std::fflush(stdout);
}

uint16_t toBf16(float f) {  // round to nearest even; NaN stays NaN
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
float fromBf16(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct Rng {  // xorshift64*, seeded per case so every run draws fresh but reproducible data
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
  double uniform() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return double((s * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
  }
  float normal() {  // Box-Muller
    const double u1 = std::max(uniform(), 1e-300), u2 = uniform();
    return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
};

struct Case {
  int B, H, N;
  float sigma;
};

// float64 attention for one query row (b, h, i) from bf16 qkv (as float).
void refRow(const std::vector<float>& qkv, int N, int H, int d, double scale, int b, int h, int i, double* out,
            std::vector<double>& s) {
  const size_t ld = size_t(3) * H * d;
  const float* base = qkv.data() + size_t(b) * N * ld;
  const float* q = base + size_t(i) * ld + size_t(h) * d;
  double mx = -INFINITY;
  for (int j = 0; j < N; ++j) {
    const float* k = base + size_t(j) * ld + size_t(H) * d + size_t(h) * d;
    double acc = 0;
    for (int c = 0; c < d; ++c) acc += double(q[c]) * double(k[c]);
    s[j] = acc * scale;
    mx = std::max(mx, s[j]);
  }
  double l = 0;
  for (int c = 0; c < d; ++c) out[c] = 0;
  for (int j = 0; j < N; ++j) {
    const double p = std::exp(s[j] - mx);
    l += p;
    const float* v = base + size_t(j) * ld + size_t(2 * H) * d + size_t(h) * d;
    for (int c = 0; c < d; ++c) out[c] += p * double(v[c]);
  }
  for (int c = 0; c < d; ++c) out[c] /= l;
}

struct RowRef {
  int b, h, i;
};

std::vector<RowRef> sampleRows(const Case& c, Rng& rng) {
  std::vector<RowRef> rows;
  const bool all = size_t(c.B) * c.H * c.N <= 4096;
  for (int b = 0; b < c.B; ++b)
    for (int h = 0; h < c.H; ++h) {
      if (all) {
        for (int i = 0; i < c.N; ++i) rows.push_back({b, h, i});
        continue;
      }
      std::set<int> pick = {0, 1, 63, 64, 65, 127, 128, 129, c.N / 2, c.N - 65, c.N - 64, c.N - 2, c.N - 1};
      const int extra = std::max(16, 192 / (c.B * c.H));
      for (int k = 0; k < extra; ++k) pick.insert(int(rng.uniform() * c.N) % c.N);
      for (int i : pick)
        if (i >= 0 && i < c.N) rows.push_back({b, h, i});
    }
  return rows;
}

struct Err {
  double rel = 0, maxAbs = 0;
  size_t nan = 0;
};

}  // namespace

int main() {
  int dev = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
    std::printf("no usable CUDA device: %s\n0 passed, 1 failed\n", cudaGetErrorString(cudaGetLastError()));
    return 1;
  }
  std::printf("flash attention GPU test on %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount);
  const uint64_t seed0 = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed0));

  const std::vector<Case> cases = {
      {1, 1, 1, 1.f},   {2, 3, 17, 1.f},   {1, 2, 63, 2.f},    {2, 2, 64, 1.f},
      {1, 3, 65, 1.f},  {2, 2, 127, 1.f},  {1, 2, 129, 2.f},   {2, 4, 197, 1.f},
      {1, 2, 1000, 2.f}, {2, 2, 4101, 1.f}, {1, 2, 65541, 1.f},
  };
  const size_t kGuard = 4096;  // bf16 elements of guard behind the output
  uint64_t caseNo = 0;
  try {
    for (int d : {64, 80, 128}) {
      const auto variants = flashVariants(d);
      std::printf("\nhead dim %d: %zu variants\n", d, variants.size());
      for (const Case& c : cases) {
        Rng rng(seed0 + (++caseNo));
        const double scale = 1.0 / std::sqrt(double(d));
        const size_t ld = size_t(3) * c.H * d, ldo = size_t(c.H) * d;
        const size_t nIn = size_t(c.B) * c.N * ld, nOut = size_t(c.B) * c.N * ldo;
        std::vector<uint16_t> hIn(nIn);
        std::vector<float> fIn(nIn);
        for (size_t i = 0; i < nIn; ++i) {
          hIn[i] = toBf16(c.sigma * rng.normal());
          fIn[i] = fromBf16(hIn[i]);
        }
        // float64 reference rows
        const auto rows = sampleRows(c, rng);
        std::vector<double> ref(rows.size() * d);
#pragma omp parallel
        {
          std::vector<double> s(c.N);
#pragma omp for schedule(dynamic, 4)
          for (long r = 0; r < long(rows.size()); ++r)
            refRow(fIn, c.N, c.H, d, scale, rows[r].b, rows[r].h, rows[r].i, ref.data() + size_t(r) * d, s);
        }

        void* dIn = nullptr;
        void* dOut = nullptr;
        float* dRef = nullptr;
        FS_CUDA_CHECK(cudaMalloc(&dIn, nIn * 2));
        FS_CUDA_CHECK(cudaMalloc(&dOut, (nOut + kGuard) * 2));
        FS_CUDA_CHECK(cudaMalloc(&dRef, nOut * 4));
        FS_CUDA_CHECK(cudaMemcpy(dIn, hIn.data(), nIn * 2, cudaMemcpyHostToDevice));

        // The fp32 reference kernel, checked against float64 on the sampled rows.
        FS_CUDA_CHECK(cudaMemset(dRef, 0xFF, nOut * 4));
        attentionReference(dIn, dRef, c.B, c.N, c.H, d, int64_t(ld), float(scale), 0);
        FS_CUDA_CHECK(cudaDeviceSynchronize());
        std::vector<float> gRef(nOut);
        FS_CUDA_CHECK(cudaMemcpy(gRef.data(), dRef, nOut * 4, cudaMemcpyDeviceToHost));
        auto at = [&](int b, int i, int h) { return (size_t(b) * c.N + i) * ldo + size_t(h) * d; };
        {
          double num = 0, den = 0;
          for (size_t r = 0; r < rows.size(); ++r)
            for (int k = 0; k < d; ++k) {
              const double x = gRef[at(rows[r].b, rows[r].i, rows[r].h) + k], y = ref[r * d + k];
              num += (x - y) * (x - y);
              den += y * y;
            }
          const double rel = std::sqrt(num / den);
          char buf[160];
          std::snprintf(buf, sizeof buf, "reference kernel d=%d B=%d H=%d N=%d: relErr vs float64 %.2e", d, c.B, c.H,
                        c.N, rel);
          check(rel < 1e-4, buf);  // NaN compares false: fails
        }

        for (size_t vi = 0; vi < variants.size(); ++vi) {
          FS_CUDA_CHECK(cudaMemset(dOut, 0xFF, (nOut + kGuard) * 2));
          flashAttentionForward(dIn, dOut, c.B, c.N, c.H, d, int64_t(ld), int64_t(ldo), float(scale), 0, int(vi));
          FS_CUDA_CHECK(cudaDeviceSynchronize());
          std::vector<uint16_t> hOut(nOut + kGuard);
          FS_CUDA_CHECK(cudaMemcpy(hOut.data(), dOut, (nOut + kGuard) * 2, cudaMemcpyDeviceToHost));
          bool guardOk = true;
          for (size_t i = nOut; i < nOut + kGuard; ++i) guardOk &= hOut[i] == 0xFFFF;
          Err e64, e32;
          {
            double num = 0, den = 0;
            for (size_t r = 0; r < rows.size(); ++r)
              for (int k = 0; k < d; ++k) {
                const double x = fromBf16(hOut[at(rows[r].b, rows[r].i, rows[r].h) + k]), y = ref[r * d + k];
                if (std::isnan(x)) ++e64.nan;
                num += (x - y) * (x - y);
                den += y * y;
                e64.maxAbs = std::max(e64.maxAbs, std::fabs(x - y));
              }
            e64.rel = std::sqrt(num / den);
          }
          {
            double num = 0, den = 0;
            for (size_t i = 0; i < nOut; ++i) {
              const double x = fromBf16(hOut[i]), y = gRef[i];
              if (std::isnan(x)) ++e32.nan;
              num += (x - y) * (x - y);
              den += y * y;
              e32.maxAbs = std::max(e32.maxAbs, std::fabs(x - y));
            }
            e32.rel = std::sqrt(num / den);
          }
          const bool ok = e64.nan == 0 && e32.nan == 0 && guardOk && e64.rel < 1e-2 && e32.rel < 1e-2;
          char buf[320];
          std::snprintf(buf, sizeof buf,
                        "%-14s B=%d H=%d N=%-5d sigma=%.0f: vs float64 (%zu rows) relErr %.2e maxAbs %.2e | vs ref "
                        "kernel (all rows) relErr %.2e | NaN %zu | guard %s",
                        variants[vi].name().c_str(), c.B, c.H, c.N, c.sigma, rows.size(), e64.rel, e64.maxAbs, e32.rel,
                        e64.nan + e32.nan, guardOk ? "intact" : "OVERWRITTEN");
          check(ok, buf);
        }
        FS_CUDA_CHECK(cudaFree(dIn));
        FS_CUDA_CHECK(cudaFree(dOut));
        FS_CUDA_CHECK(cudaFree(dRef));
      }
    }
    // Token dropping: sequences padded to N with their own lengths (seqLens). Each sequence's
    // rows must equal attention over its first seqLens[b] rows alone (the reference kernel on
    // that slice); padding rows hold random finite values, as in the engine, and padding query
    // rows must come out finite.
    for (int d : {64, 80, 128}) {
      const auto variants = flashVariants(d);
      for (const int N : {300, 4101}) {
        const int B = 3, H = 2;
        const std::vector<int> lens = {N, N / 2 + 3, 1};
        Rng rng(seed0 + (++caseNo));
        const double scale = 1.0 / std::sqrt(double(d));
        const size_t ld = size_t(3) * H * d, ldo = size_t(H) * d;
        const size_t nIn = size_t(B) * N * ld, nOut = size_t(B) * N * ldo;
        std::vector<uint16_t> hIn(nIn);
        for (auto& v : hIn) v = toBf16(rng.normal());
        void *dIn = nullptr, *dOut = nullptr;
        float* dRef = nullptr;
        int* dLens = nullptr;
        FS_CUDA_CHECK(cudaMalloc(&dIn, nIn * 2));
        FS_CUDA_CHECK(cudaMalloc(&dOut, (nOut + kGuard) * 2));
        FS_CUDA_CHECK(cudaMalloc(&dRef, nOut * 4));
        FS_CUDA_CHECK(cudaMalloc(&dLens, B * sizeof(int)));
        FS_CUDA_CHECK(cudaMemcpy(dIn, hIn.data(), nIn * 2, cudaMemcpyHostToDevice));
        FS_CUDA_CHECK(cudaMemcpy(dLens, lens.data(), B * sizeof(int), cudaMemcpyHostToDevice));
        FS_CUDA_CHECK(cudaMemset(dRef, 0, nOut * 4));
        for (int b = 0; b < B; ++b)
          attentionReference(static_cast<const uint16_t*>(dIn) + size_t(b) * N * ld, dRef + size_t(b) * N * ldo, 1, lens[b],
                             H, d, int64_t(ld), float(scale), 0);
        FS_CUDA_CHECK(cudaDeviceSynchronize());
        std::vector<float> gRef(nOut);
        FS_CUDA_CHECK(cudaMemcpy(gRef.data(), dRef, nOut * 4, cudaMemcpyDeviceToHost));
        for (size_t vi = 0; vi < variants.size(); ++vi) {
          FS_CUDA_CHECK(cudaMemset(dOut, 0xFF, (nOut + kGuard) * 2));
          flashAttentionForward(dIn, dOut, B, N, H, d, int64_t(ld), int64_t(ldo), float(scale), 0, int(vi), dLens);
          FS_CUDA_CHECK(cudaDeviceSynchronize());
          std::vector<uint16_t> hOut(nOut + kGuard);
          FS_CUDA_CHECK(cudaMemcpy(hOut.data(), dOut, (nOut + kGuard) * 2, cudaMemcpyDeviceToHost));
          bool guardOk = true;
          for (size_t i = nOut; i < nOut + kGuard; ++i) guardOk &= hOut[i] == 0xFFFF;
          double num = 0, den = 0;
          size_t nan = 0;
          for (int b = 0; b < B; ++b)
            for (int i = 0; i < N; ++i)
              for (size_t k = 0; k < ldo; ++k) {
                const size_t at = (size_t(b) * N + i) * ldo + k;
                const double x = fromBf16(hOut[at]);
                if (!std::isfinite(x)) ++nan;
                if (i >= lens[b]) continue;
                const double y = gRef[at];
                num += (x - y) * (x - y);
                den += y * y;
              }
          const double rel = std::sqrt(num / den);
          char buf[256];
          std::snprintf(buf, sizeof buf, "%-14s seqLens {%d, %d, %d} of N=%d: relErr %.2e vs each sequence alone | non-finite %zu | guard %s",
                        variants[vi].name().c_str(), lens[0], lens[1], lens[2], N, rel, nan, guardOk ? "intact" : "OVERWRITTEN");
          check(nan == 0 && guardOk && rel < 1e-2, buf);
        }
        FS_CUDA_CHECK(cudaFree(dIn));
        FS_CUDA_CHECK(cudaFree(dOut));
        FS_CUDA_CHECK(cudaFree(dRef));
        FS_CUDA_CHECK(cudaFree(dLens));
      }
    }
    // Argument validation: an unsupported head dim is an engine error, not a crash.
    try {
      flashAttentionForward(nullptr, nullptr, 1, 1, 1, 96, 288, 96, 1.f, 0);
      check(false, "head dim 96 rejected");
    } catch (const Error& e) {
      check(e.code() == "unsupported_arch", std::string("head dim 96 rejected: ") + e.what());
    }
  } catch (const Error& e) {
    std::printf("  FAIL  aborted: [%s] %s\n", e.code().c_str(), e.what());
    ++g_fail;
  }
  std::printf("\n%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
