// flashslide CUDA backend: exact k = 1 nearest-neighbour distances on the GPU (knn_cuda.cu).
//
// The same computation as CpuNearestIndex (cpu/knn_cpu.h): rows centred on the bank's mean
// on the host (double, rounded to float32), then per (query block x bank block) one float32
// GEMM S = Q B^T through cuBLASLt with CUBLAS_COMPUTE_32F (true fp32: never TF32, whose 10-bit
// mantissa would cost three orders of magnitude of accuracy in |q|^2 + |b|^2 - 2 q.b) and a
// row-minimum kernel over |b|^2 - 2 S; |q|^2 (double) is added on the host and the sqrt taken
// there. The bank stays on the device for the index's lifetime; queries are streamed through
// pinned staging buffers one block at a time, so device memory is bank + one block of S.
//
// This header needs no CUDA headers, so host-only C++ (the addon, the test) can include it.
#pragma once

#include <cstdint>
#include <memory>

namespace flashslide {
namespace cuda {

struct KnnCudaOptions {
  int queryBlock = 4096;  // queries per GEMM (rows of S)
  int bankBlock = 8192;   // bank rows per GEMM (columns of S; rounded up to a multiple of 16):
                          // S is 128 MiB at these sizes
};

class CudaNearestIndex {
 public:
  // Centres the bank [size, dim] (host pointer) and uploads it to the current device.
  // Throws flashslide::Error: bad_input, out_of_memory, cuda_error.
  CudaNearestIndex(const float* bank, int64_t size, int dim, KnnCudaOptions options = {});
  ~CudaNearestIndex();
  CudaNearestIndex(const CudaNearestIndex&) = delete;
  CudaNearestIndex& operator=(const CudaNearestIndex&) = delete;

  int64_t size() const;
  int dim() const;

  // out[i] = distance from queries[i] ([n, dim], host) to its nearest bank row (host).
  // Synchronous; calls on one index are serialised (they share the staging buffers).
  void search(const float* queries, int64_t n, float* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cuda
}  // namespace flashslide
