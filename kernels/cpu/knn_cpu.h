// flashslide: exact k = 1 Euclidean nearest-neighbour distances (reference-bank scoring).
//
// For every query row q, min over the bank rows b of |q - b|, computed as
//   sqrt(max(0, |q|^2 + |b|^2 - 2 q.b))
// so that the work is one inner-product matrix Q B^T: a GEMM per (query block x bank block)
// followed by a row minimum. Both sides are first centred on the bank's mean (distances do
// not change under a common shift): ViT embeddings share a large mean component, and
// removing it shrinks |q|^2 and |b|^2, and with them the float32 cancellation error of the
// formula, by the ratio of the mean's energy to the spread's.
//
// CpuNearestIndex: float32 cblas_sgemm per block (OpenBLAS single-threaded inside an OpenMP
// team over query blocks, as the ViT's CPU backend does), row minima in float32, norms in
// double. nearestDistancesReference: the plain loop over (q - b)^2 in double, for tests.
// The CUDA twin is cuda/knn_cuda.h (same preparation: knnPrepareRows below).
#pragma once

#include <cstdint>
#include <vector>

namespace flashslide {

// Rows centred on `center` and rounded to float32, with row stride `ld` >= dim (padding
// columns are 0), and their squared norms computed in double from the centred values.
struct CenteredRows {
  int64_t rows = 0;
  int dim = 0;
  int ld = 0;
  std::vector<float> data;      // rows x ld
  std::vector<double> sqNorms;  // rows
};

// Column mean of rows [n, dim] in double (zeros for n == 0).
std::vector<double> knnColumnMean(const float* rows, int64_t n, int dim);

// One row centred on `center` (double) into y (float32); returns the squared norm of the float32
// values (double), i.e. of what the GEMM will see. Every centring in the scoring kernels is this.
inline double centerRow(const float* x, const double* center, int dim, float* y) {
  double s = 0;
  for (int c = 0; c < dim; ++c) {
    const float v = static_cast<float>(static_cast<double>(x[c]) - center[c]);
    y[c] = v;
    s += static_cast<double>(v) * v;
  }
  return s;
}

// Centres rows [n, dim] on `center` (double, dim) into out [n, ld] (float32, padding
// zeroed) and writes the squared norms of the centred rows (double, from the float32
// values that the GEMM will see). OpenMP over rows.
void knnCenterRows(const float* rows, int64_t n, int dim, const double* center, float* out, int ld,
                   double* sqNorms);

// Bank preparation shared by the CPU and CUDA indexes: the centre (bank mean) and the
// centred bank with row stride `ld`.
CenteredRows knnPrepareRows(const float* rows, int64_t n, int dim, const double* center, int ld);

struct KnnCpuOptions {
  // Queries per GEMM block: the unit of parallel work. Smaller blocks are used when there
  // are too few queries to give every thread one.
  int queryBlock = 256;
  // Bank rows per GEMM block: queryBlock x bankBlock float32 products (1 MiB) per thread.
  int bankBlock = 1024;
};

class CpuNearestIndex {
 public:
  // Copies and centres the bank [size, dim]. Throws flashslide::Error("bad_input") for an
  // empty bank or dim < 1.
  CpuNearestIndex(const float* bank, int64_t size, int dim, KnnCpuOptions options = {});

  int64_t size() const { return bank_.rows; }
  int dim() const { return bank_.dim; }

  // out[i] = distance from queries[i] ([n, dim] row-major) to its nearest bank row.
  // Thread-safe: all scratch is per call.
  void search(const float* queries, int64_t n, float* out) const;

 private:
  KnnCpuOptions options_;
  std::vector<double> center_;
  CenteredRows bank_;
  std::vector<float> bankNorms_;  // float32 |b|^2, added to -2 q.b in the row minimum
};

// The plain loop: min_j sum_t (q_t - b_t)^2 in double, then sqrt. O(n x size x dim).
void nearestDistancesReference(const float* bank, int64_t size, const float* queries, int64_t n, int dim,
                               float* out);

}  // namespace flashslide
