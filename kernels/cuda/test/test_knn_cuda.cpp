// flashslide CUDA backend: nearest-neighbour distances on the GPU against the CPU (needs a GPU).
//
//   ./build/cuda/test_knn_cuda
//
// For random banks and queries (unit normals, some with a large common offset, some queries
// exact copies of bank rows), CudaNearestIndex::search against nearestDistancesReference (the
// plain double loop) with the CPU test's bounds: squared-distance error / (2 dim) < 1e-5 and
// relative distance error < 1e-4. TF32 (10-bit mantissa) would miss these by ~100x, so a
// GEMM that silently ran in TF32 fails here. Block sizes are shrunk in some cases so ragged
// query and bank blocks are exercised; the output is NaN-poisoned first. Then one timing of
// 100k queries x a 20k bank at dim 1024 (the scale of a slide against a full bank).
// Prints "N passed, M failed"; exit status 1 on any failure.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "../../cpu/knn_cpu.h"
#include "../../engine/error.h"
#include "../knn_cuda.h"

using namespace flashslide;

static int g_pass = 0, g_fail = 0;
static void check(bool ok, const std::string& what) {
  (ok ? g_pass : g_fail)++;
  std::printf("  %s  %s\n", ok ? "ok  " : "FAIL", what.c_str());
  std::fflush(stdout);
}

int main() {
  struct Case {
    int64_t bank, queries;
    int dim;
    float offset;
    cuda::KnnCudaOptions blocks;
  };
  const Case cases[] = {{1, 1, 1, 0, {}},
                        {7, 5, 3, 0, {}},
                        {131, 71, 37, 0, {32, 64}},
                        {300, 1000, 64, 0, {128, 100}},
                        {1000, 513, 384, 0, {}},
                        {2000, 300, 1024, 0, {}},
                        {500, 200, 192, 50, {}},
                        {20000, 5000, 1024, 0, {1024, 8192}},
                        {9000, 4100, 1536, 5, {}}};
  std::mt19937 rng(2026);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const Case& c : cases) {
    try {
      std::vector<float> bank(size_t(c.bank) * c.dim), q(size_t(c.queries) * c.dim);
      for (auto& v : bank) v = nd(rng) + c.offset;
      for (auto& v : q) v = nd(rng) + c.offset;
      const int64_t dups = std::min<int64_t>(3, std::min(c.queries, c.bank));
      for (int64_t i = 0; i < dups; ++i)
        std::copy(bank.begin() + (c.bank - 1 - i) * c.dim, bank.begin() + (c.bank - i) * c.dim, q.begin() + i * c.dim);
      std::vector<float> ref(size_t(c.queries)), got(ref.size(), NAN);
      nearestDistancesReference(bank.data(), c.bank, q.data(), c.queries, c.dim, ref.data());
      cuda::CudaNearestIndex index(bank.data(), c.bank, c.dim, c.blocks);
      index.search(q.data(), c.queries, got.data());
      double maxErr2 = 0, maxRel = 0, dupMax = 0;
      size_t nonFinite = 0;
      for (int64_t i = 0; i < c.queries; ++i) {
        if (!std::isfinite(got[i])) ++nonFinite;
        maxErr2 = std::max(maxErr2, std::fabs(double(got[i]) * got[i] - double(ref[i]) * ref[i]) / (2.0 * c.dim));
        if (ref[i] > 0.5) maxRel = std::max(maxRel, std::fabs(double(got[i]) - ref[i]) / ref[i]);
        if (i < dups) dupMax = std::max(dupMax, double(got[i]));
      }
      char buf[240];
      std::snprintf(buf, sizeof buf,
                    "bank %5lld x queries %5lld x dim %4d offset %2.0f blocks %dx%d: d^2 err/(2 dim) %.1e, rel %.1e, "
                    "dup %.1e, non-finite %zu",
                    static_cast<long long>(c.bank), static_cast<long long>(c.queries), c.dim, c.offset,
                    c.blocks.queryBlock, c.blocks.bankBlock, maxErr2, maxRel, dupMax, nonFinite);
      check(nonFinite == 0 && maxErr2 < 1e-5 && maxRel < 1e-4 && dupMax < 1e-2 * std::sqrt(c.dim), buf);
    } catch (const std::exception& e) {
      check(false, std::string("exception: ") + e.what());
    }
  }
  try {
    float x = 0;
    cuda::CudaNearestIndex bad(&x, 0, 1);
    check(false, "empty bank: no exception");
  } catch (const Error& e) {
    check(e.code() == "bad_input", std::string("empty bank -> [") + e.code() + "] " + e.what());
  }
  // Timing at a slide's scale (the GPU vs the CPU index on this machine's cores).
  try {
    const int64_t nb = 20000, nq = 100000;
    const int dim = 1024;
    std::vector<float> bank(static_cast<size_t>(nb) * dim), q(static_cast<size_t>(nq) * dim);
    std::vector<float> got(static_cast<size_t>(nq)), cpu(4096);
    for (auto& v : bank) v = nd(rng);
    for (auto& v : q) v = nd(rng);
    cuda::CudaNearestIndex index(bank.data(), nb, dim);
    index.search(q.data(), 4096, got.data());  // warm-up: plans, buffers
    const auto t0 = std::chrono::steady_clock::now();
    index.search(q.data(), nq, got.data());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CpuNearestIndex cpuIndex(bank.data(), nb, dim);
    const auto t1 = std::chrono::steady_clock::now();
    cpuIndex.search(q.data(), 4096, cpu.data());
    const double sc = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count() * nq / 4096;
    double maxRel = 0;
    for (int64_t i = 0; i < 4096; ++i) maxRel = std::max(maxRel, std::fabs(double(got[i]) - cpu[i]) / cpu[i]);
    char buf[240];
    std::snprintf(buf, sizeof buf,
                  "timing: %lld queries x %lld bank x dim %d: GPU %.3f s (%.1f TFLOP/s incl. host centring and "
                  "copies), CPU index %.1f s (extrapolated from 4096 queries); GPU vs CPU rel %.1e",
                  static_cast<long long>(nq), static_cast<long long>(nb), dim, s, 2.0 * nq * nb * dim / s / 1e12, sc,
                  maxRel);
    check(maxRel < 1e-4, buf);
  } catch (const std::exception& e) {
    check(false, std::string("timing: exception: ") + e.what());
  }
  std::printf("\n%d passed, %d failed\n", g_pass, g_fail);
  return g_fail == 0 ? 0 : 1;
}
