// flashslide: the two products of the `self` scorer's PCA, on centred rows, with float32 BLAS.
//
// The scorer centres a slide's patch embeddings X [n, dim] on their mean c and needs
//   project:  P = (X - 1 c^T) B^T       [n, k]  (B: k basis rows)  + |x_i - c|^2 per row
//   combine:  Y = W (X - 1 c^T)          [l, dim] (W: l weights per row)
// which the JavaScript reference computes in float64 with plain loops (O(n dim k) each). Here
// the rows are centred in double and rounded to float32 (centring first keeps a large common
// offset out of the float32 products), then one cblas_sgemm per fixed block. Blocks are
// fixed-size and independent of the thread count, so every output element is computed the
// same way on every run: results are deterministic for the same inputs on the same machine.
#pragma once

#include <cstdint>

namespace flashslide {

// coords [n, k] = (rows - center) basis^T, sqNorms[i] = |rows_i - center|^2 (double, from the
// float32 centred values). rows [n, dim], center [dim] (double), basis [k, dim].
void projectCenteredCpu(const float* rows, int64_t n, int dim, const double* center, const float* basis, int k,
                        float* coords, double* sqNorms);

// out [l, dim] = weights (rows - center); weights [l, n]. Holds one centred float32 copy of
// the rows (n x dim) while it runs.
void combineCenteredCpu(const float* rows, int64_t n, int dim, const double* center, const float* weights, int l,
                        float* out);

}  // namespace flashslide
