// flashslide: cblas_sgemm stand-in, see cblas.h beside this file. Plain loops, one output
// element at a time with a float accumulator; row-major and column-major, either transpose.
#include "cblas.h"

#include <cstddef>

extern "C" void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE transA, enum CBLAS_TRANSPOSE transB, int M,
                            int N, int K, float alpha, const float* A, int lda, const float* B, int ldb, float beta,
                            float* C, int ldc) {
  // Column-major C = op(A) op(B) is row-major C^T = op(B)^T op(A)^T: swap the operands.
  if (order == CblasColMajor) {
    cblas_sgemm(CblasRowMajor, transB, transA, N, M, K, alpha, B, ldb, A, lda, beta, C, ldc);
    return;
  }
  const bool ta = transA != CblasNoTrans, tb = transB != CblasNoTrans;
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float acc = 0.f;
      for (int k = 0; k < K; ++k) {
        const float a = ta ? A[static_cast<size_t>(k) * lda + i] : A[static_cast<size_t>(i) * lda + k];
        const float b = tb ? B[static_cast<size_t>(j) * ldb + k] : B[static_cast<size_t>(k) * ldb + j];
        acc += a * b;
      }
      float& c = C[static_cast<size_t>(i) * ldc + j];
      c = alpha * acc + (beta == 0.f ? 0.f : beta * c);
    }
}
