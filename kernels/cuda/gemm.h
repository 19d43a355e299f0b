// flashslide CUDA backend: the GEMM interface (implemented with cuBLASLt in
// gemm_cublaslt.cu, the only file that includes cuBLAS headers).
//
// Every linear layer of the ViT is Y[M, N] = X[M, K] W[N, K]^T (+ bias, + epilogue), with X
// the activations (bf16, row stride lda), W the weight in PyTorch's nn.Linear layout (bf16,
// row stride ldw) and Y bf16 or fp32 (row stride ldc). With accumulate, Y += X W^T + bias:
// that is how proj and fc2 add into the fp32 residual stream without a separate pass.
// All pointers 256-byte aligned (cudaMalloc; sub-allocations keep it), row strides multiples
// of 8 elements, as cuBLASLt's fast kernels want.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace flashslide {
namespace cuda {

enum class GemmOut { Bf16, F32 };
enum class GemmEpilogue { None, Bias, GeluBias };  // GeluBias: GELU(acc + bias), cuBLASLt's GELU

struct GemmArgs {
  int M = 0, N = 0, K = 0;
  const void* X = nullptr;  // [M, K] bf16
  int64_t ldx = 0;
  const void* W = nullptr;  // [N, K] bf16
  int64_t ldw = 0;
  void* Y = nullptr;        // [M, N], type `out`
  int64_t ldy = 0;
  GemmOut out = GemmOut::Bf16;
  GemmEpilogue epilogue = GemmEpilogue::None;
  const void* bias = nullptr;  // [N], same type as Y
  bool accumulate = false;     // Y = X W^T + bias + Y (beta = 1)
};

class Gemm {
 public:
  Gemm();  // creates the cuBLASLt handle and a workspace on the current device
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // Runs the product on `stream`. Returns false, without launching anything, when cuBLASLt
  // has no algorithm for this combination of types/epilogue (the caller falls back to a
  // plainer form); throws flashslide::Error on any other failure.
  bool run(const GemmArgs& a, cudaStream_t stream);
  size_t workspaceBytes() const;

  // Autotune (default off; FLASHSLIDE_GEMM_AUTOTUNE=1 turns it on): when a shape is first
  // seen, time the heuristic's top candidates once on the real operands (output into a
  // scratch buffer) and keep the fastest, instead of trusting the heuristic's first pick.
  // Changing the setting drops the cached plans. Measured on the H100 (bench/NOTES.md,
  // issue 5): no gain for the ViT-L shapes, the heuristic's first pick was already fastest.
  void setAutotune(bool on);
  bool autotune() const;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace cuda
}  // namespace flashslide
