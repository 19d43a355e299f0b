// flashslide: centred float32 products for the `self` scorer (see centered_gemm_cpu.h).
#include "centered_gemm_cpu.h"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <string>
#include <vector>

#include "../engine/error.h"
#include "blas_threads.h"
#include "knn_cpu.h"

namespace flashslide {

namespace {
constexpr int64_t kRowBlock = 256;  // rows per projection GEMM (the parallel unit)
constexpr int kColBlock = 64;       // output columns per combine GEMM (the parallel unit)

void checkShape(int64_t n, int dim, int k, const char* what) {
  if (n < 0 || dim < 1 || k < 0)
    throw Error("bad_input", std::string(what) + ": bad shape n=" + std::to_string(n) + " dim=" + std::to_string(dim) +
                                 " k=" + std::to_string(k));
}
}  // namespace

void projectCenteredCpu(const float* rows, int64_t n, int dim, const double* center, const float* basis, int k,
                        float* coords, double* sqNorms) {
  checkShape(n, dim, k, "projectCentered");
  if (n == 0) return;
  useSingleThreadedBlas();
  const int64_t blocks = (n + kRowBlock - 1) / kRowBlock;
#pragma omp parallel
  {
    std::vector<float> xc(static_cast<size_t>(kRowBlock) * dim);
#pragma omp for schedule(dynamic, 1)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t r0 = blk * kRowBlock;
      const int64_t m = std::min(kRowBlock, n - r0);
      for (int64_t i = 0; i < m; ++i) sqNorms[r0 + i] = centerRow(rows + (r0 + i) * dim, center, dim, xc.data() + i * dim);
      if (k > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), k, dim, 1.0f, xc.data(), dim, basis,
                    dim, 0.0f, coords + r0 * k, k);
    }
  }
}

void combineCenteredCpu(const float* rows, int64_t n, int dim, const double* center, const float* weights, int l,
                        float* out) {
  checkShape(n, dim, l, "combineCentered");
  if (l == 0) return;
  if (n == 0) {
    std::fill(out, out + static_cast<size_t>(l) * dim, 0.0f);
    return;
  }
  if (n > INT_MAX) throw Error("bad_input", "combineCentered: more than 2^31 - 1 rows");
  useSingleThreadedBlas();
  std::vector<float> xc(static_cast<size_t>(n) * dim);
  std::vector<double> norms(static_cast<size_t>(n));
  knnCenterRows(rows, n, dim, center, xc.data(), dim, norms.data());
  const int blocks = (dim + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(dynamic, 1)
  for (int blk = 0; blk < blocks; ++blk) {
    const int c0 = blk * kColBlock;
    const int w = std::min(kColBlock, dim - c0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l, w, static_cast<int>(n), 1.0f, weights,
                static_cast<int>(n), xc.data() + c0, dim, 0.0f, out + c0, dim);
  }
}

}  // namespace flashslide
