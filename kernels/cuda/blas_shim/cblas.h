// flashslide: minimal CBLAS stand-in (cblas_sgemm only) for machines without a BLAS
// package, e.g. the GPU test machine, where the CPU backend is only linked, not timed.
// Used only when the build is asked for it (make BLAS_SHIM=1, FLASHSLIDE_BLAS_SHIM=1 for the
// addon); correct but unoptimised. Real builds use OpenBLAS.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 };

void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE transA, enum CBLAS_TRANSPOSE transB, int M, int N,
                 int K, float alpha, const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc);

#ifdef __cplusplus
}
#endif
