// flashslide: the one OpenBLAS threading rule of the CPU kernels.
//
// OpenMP owns the cores and OpenBLAS is called single-threaded from inside the team: letting
// OpenBLAS's own pthread pool and libgomp's pool alternate on the same cores was ~2x slower
// (bench/NOTES.md, CPU engine). The ViT backend sets this when it is constructed; the scoring
// kernels (knn_cpu, dense_cpu) set it too, because a CUDA analysis scores on the CPU without
// ever constructing the CPU backend. Process-wide and idempotent; looked up weakly so another
// CBLAS (or the GPU machine's blas_shim) still links.
#pragma once

extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace flashslide {

inline void useSingleThreadedBlas() {
  if (openblas_set_num_threads) openblas_set_num_threads(1);
}

}  // namespace flashslide
