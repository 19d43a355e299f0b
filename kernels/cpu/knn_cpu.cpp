// flashslide: exact k = 1 nearest-neighbour distances on the CPU (see knn_cpu.h).
#include "knn_cpu.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "../engine/error.h"
#include "blas_threads.h"

namespace flashslide {

std::vector<double> knnColumnMean(const float* rows, int64_t n, int dim) {
  std::vector<double> mean(static_cast<size_t>(dim), 0.0);
  if (n <= 0) return mean;
  // Per-thread partial sums over row ranges fixed by the thread count, combined in thread
  // order: the same result on every run with the same team size.
  const int nt = std::max(1, std::min<int>(omp_get_max_threads(), static_cast<int>((n + 4095) / 4096)));
  std::vector<double> partial(static_cast<size_t>(nt) * dim, 0.0);
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    const int64_t r0 = n * t / nt, r1 = n * (t + 1) / nt;
    double* acc = partial.data() + static_cast<size_t>(t) * dim;
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = rows + r * dim;
      for (int c = 0; c < dim; ++c) acc[c] += x[c];
    }
  }
  for (int t = 0; t < nt; ++t)
    for (int c = 0; c < dim; ++c) mean[c] += partial[static_cast<size_t>(t) * dim + c];
  for (double& m : mean) m /= static_cast<double>(n);
  return mean;
}

void knnCenterRows(const float* rows, int64_t n, int dim, const double* center, float* out, int ld,
                   double* sqNorms) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n; ++r) {
    float* y = out + r * ld;
    sqNorms[r] = centerRow(rows + r * dim, center, dim, y);
    for (int c = dim; c < ld; ++c) y[c] = 0.0f;
  }
}

CenteredRows knnPrepareRows(const float* rows, int64_t n, int dim, const double* center, int ld) {
  CenteredRows c;
  c.rows = n;
  c.dim = dim;
  c.ld = ld;
  c.data.resize(static_cast<size_t>(n) * ld);
  c.sqNorms.resize(static_cast<size_t>(n));
  knnCenterRows(rows, n, dim, center, c.data.data(), ld, c.sqNorms.data());
  return c;
}

CpuNearestIndex::CpuNearestIndex(const float* bank, int64_t size, int dim, KnnCpuOptions options)
    : options_(options) {
  if (size < 1) throw Error("bad_input", "nearest-neighbour search needs a non-empty bank");
  if (dim < 1) throw Error("bad_input", "nearest-neighbour search needs dim >= 1, got " + std::to_string(dim));
  if (!bank) throw Error("bad_input", "nearest-neighbour search: null bank");
  if (options_.queryBlock < 1 || options_.bankBlock < 1) throw Error("bad_input", "kNN block sizes must be >= 1");
  useSingleThreadedBlas();
  center_ = knnColumnMean(bank, size, dim);
  bank_ = knnPrepareRows(bank, size, dim, center_.data(), dim);
  bankNorms_.resize(static_cast<size_t>(size));
  for (int64_t j = 0; j < size; ++j) bankNorms_[j] = static_cast<float>(bank_.sqNorms[j]);
}

void CpuNearestIndex::search(const float* queries, int64_t n, float* out) const {
  if (n <= 0) return;
  if (!queries || !out) throw Error("bad_input", "nearest-neighbour search: null queries or output");
  useSingleThreadedBlas();
  const int dim = bank_.dim;
  const int64_t size = bank_.rows;
  const int threads = omp_get_max_threads();
  // Enough blocks for every thread, in multiples of 16 rows (whole cache lines of output).
  int64_t qb = options_.queryBlock;
  if (n < qb * threads) qb = std::max<int64_t>(16, ((n + threads - 1) / threads + 15) / 16 * 16);
  const int64_t bb = std::min<int64_t>(options_.bankBlock, size);
  const int64_t blocks = (n + qb - 1) / qb;
#pragma omp parallel
  {
    std::vector<float> q(static_cast<size_t>(qb) * dim);
    std::vector<double> qNorm(static_cast<size_t>(qb));
    std::vector<float> s(static_cast<size_t>(qb) * bb);
    std::vector<float> best(static_cast<size_t>(qb));
#pragma omp for schedule(dynamic, 1)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t q0 = blk * qb;
      const int64_t m = std::min(qb, n - q0);
      // Centring runs inside this thread (the outer team is already busy).
      for (int64_t i = 0; i < m; ++i) qNorm[i] = centerRow(queries + (q0 + i) * dim, center_.data(), dim, q.data() + i * dim);
      std::fill(best.begin(), best.begin() + m, std::numeric_limits<float>::infinity());
      for (int64_t b0 = 0; b0 < size; b0 += bb) {
        const int64_t nb = std::min(bb, size - b0);
        // s[i, j] = q_i . b_j
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(nb), dim, 1.0f,
                    q.data(), dim, bank_.data.data() + b0 * dim, dim, 0.0f, s.data(), static_cast<int>(nb));
        const float* bn = bankNorms_.data() + b0;
        for (int64_t i = 0; i < m; ++i) {
          const float* row = s.data() + i * nb;
          float mn = best[i];
          // |b|^2 - 2 q.b: |q|^2 is the same for the whole row and is added once at the end.
#pragma omp simd reduction(min : mn)
          for (int64_t j = 0; j < nb; ++j) mn = std::min(mn, bn[j] - 2.0f * row[j]);
          best[i] = mn;
        }
      }
      // Rounding can push an exact match a little below 0.
      for (int64_t i = 0; i < m; ++i)
        out[q0 + i] = static_cast<float>(std::sqrt(std::max(0.0, qNorm[i] + static_cast<double>(best[i]))));
    }
  }
}

void nearestDistancesReference(const float* bank, int64_t size, const float* queries, int64_t n, int dim,
                               float* out) {
#pragma omp parallel for schedule(dynamic, 8)
  for (int64_t i = 0; i < n; ++i) {
    const float* q = queries + i * dim;
    double best = std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < size; ++j) {
      const float* b = bank + j * dim;
      double d = 0;
      for (int c = 0; c < dim; ++c) {
        const double v = static_cast<double>(q[c]) - b[c];
        d += v * v;
      }
      best = std::min(best, d);
    }
    out[i] = static_cast<float>(std::sqrt(best));
  }
}

}  // namespace flashslide
