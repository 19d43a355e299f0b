// flashslide CUDA backend: activation and residual epilogues that cuBLASLt does not fuse.
//
// The common path needs only swigluInPlace (SwiGLU models: UNI2-h, Virchow, H-optimus):
// bias and GELU are fused into the fc1 GEMM's epilogue, and layer scale + bias + residual
// into the proj/fc2 GEMMs (layer scale folded into the weights, beta = 1 on the fp32
// residual stream; see vit_cuda.cu). geluErfInPlace and residualAddBf16 serve the exact-
// GELU option and the fallback when cuBLASLt offers no fp32-output algorithm.
// All three are grid-stride loops over 8-byte (4 x bf16) vectors where alignment allows.
// gatherRowsBf16 is the engine's output stage for the pipeline: the token rows a region keeps,
// fp32 -> BF16 with the host's exact bit rule (engine/bf16.h), so the device-to-host copy is
// only those rows at half the bytes; columnSumsBf16 adds them up per column for the slide's mean.
#include <cuda_bf16.h>

#include "../engine/bf16.h"
#include "cuda_check.h"
#include "vit_kernels.h"

namespace flashslide {
namespace cuda {

namespace {

inline int gridFor(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return int(blocks < 65536 * 8 ? blocks : 65536 * 8);  // grid-stride beyond this
}

__global__ void swigluKernel(__nv_bfloat16* h, int M, int Hm, int64_t ldh) {
  const int64_t n = int64_t(M) * Hm;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / Hm;
    const int c = int(i - r * Hm);
    __nv_bfloat16* row = h + r * ldh;
    const float a = __bfloat162float(row[c]), g = __bfloat162float(row[Hm + c]);
    // silu(a) = a * sigmoid(a); __expf is ample for bf16 results
    row[c] = __float2bfloat16_rn(a / (1.f + __expf(-a)) * g);
  }
}

__global__ void geluErfKernel(__nv_bfloat16* h, int M, int F, int64_t ldh) {
  const int64_t n = int64_t(M) * F;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / F;
    const int c = int(i - r * F);
    __nv_bfloat16* p = h + r * ldh + c;
    const float v = __bfloat162float(*p);
    *p = __float2bfloat16_rn(0.5f * v * (1.f + erff(v * 0.70710678118654752f)));
  }
}

__global__ void residualAddKernel(float* __restrict__ x, const __nv_bfloat16* __restrict__ y,
                                  const float* __restrict__ bias, int M, int D) {
  // D % 4 == 0 (checked by the launcher): 4 columns per thread, 16-byte x, 8-byte y.
  const int64_t n4 = int64_t(M) * D / 4;
  const int D4 = D / 4;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4; i += int64_t(gridDim.x) * blockDim.x) {
    const int c = int(i % D4) * 4;
    float4 xv = reinterpret_cast<float4*>(x)[i];
    const uint2 yu = reinterpret_cast<const uint2*>(y)[i];
    const __nv_bfloat162 y01 = *reinterpret_cast<const __nv_bfloat162*>(&yu.x);
    const __nv_bfloat162 y23 = *reinterpret_cast<const __nv_bfloat162*>(&yu.y);
    const float4 bv = *reinterpret_cast<const float4*>(bias + c);
    xv.x += __low2float(y01) + bv.x;
    xv.y += __high2float(y01) + bv.y;
    xv.z += __low2float(y23) + bv.z;
    xv.w += __high2float(y23) + bv.w;
    reinterpret_cast<float4*>(x)[i] = xv;
  }
}

__global__ void gatherRowsBf16Kernel(const float* __restrict__ x, const int32_t* __restrict__ rows, int64_t nRows,
                                     int D, uint16_t* __restrict__ out) {
  const int64_t n = nRows * D;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / D;
    const int c = int(i - r * D);
    out[i] = bf16FromFloatBits(__float_as_uint(x[int64_t(rows[r]) * D + c]));
  }
}

__global__ void columnSumsBf16Kernel(const uint16_t* __restrict__ y, int64_t nRows, int D, double* __restrict__ sums) {
  // One thread per column, rows in order: a warp reads 32 neighbouring columns of a row at a time.
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= D) return;
  // Eight loads in flight per thread (few threads: D of them), added in row order.
  double s = 0;
  int64_t i = 0;
  for (; i + 8 <= nRows; i += 8) {
    uint16_t v[8];
#pragma unroll
    for (int k = 0; k < 8; ++k) v[k] = y[(i + k) * D + j];
#pragma unroll
    for (int k = 0; k < 8; ++k) s += double(__uint_as_float(uint32_t(v[k]) << 16));
  }
  for (; i < nRows; ++i) s += double(__uint_as_float(uint32_t(y[i * D + j]) << 16));
  sums[j] = s;
}

}  // namespace

void columnSumsBf16(const void* y, int64_t nRows, int D, double* sums, cudaStream_t stream) {
  if (D == 0) return;
  columnSumsBf16Kernel<<<(D + 127) / 128, 128, 0, stream>>>(static_cast<const uint16_t*>(y), nRows, D, sums);
  FS_CUDA_CHECK_LAUNCH("columnSumsBf16Kernel");
}

void gatherRowsBf16(const float* x, const int32_t* rows, int64_t nRows, int D, void* out, cudaStream_t stream) {
  const int64_t n = nRows * D;
  if (n == 0) return;
  gatherRowsBf16Kernel<<<gridFor(n, 256), 256, 0, stream>>>(x, rows, nRows, D, static_cast<uint16_t*>(out));
  FS_CUDA_CHECK_LAUNCH("gatherRowsBf16Kernel");
}

void swigluInPlace(void* h, int M, int Hm, int64_t ldh, cudaStream_t stream) {
  const int64_t n = int64_t(M) * Hm;
  if (n == 0) return;
  swigluKernel<<<gridFor(n, 256), 256, 0, stream>>>(static_cast<__nv_bfloat16*>(h), M, Hm, ldh);
  FS_CUDA_CHECK_LAUNCH("swigluKernel");
}

void geluErfInPlace(void* h, int M, int F, int64_t ldh, cudaStream_t stream) {
  const int64_t n = int64_t(M) * F;
  if (n == 0) return;
  geluErfKernel<<<gridFor(n, 256), 256, 0, stream>>>(static_cast<__nv_bfloat16*>(h), M, F, ldh);
  FS_CUDA_CHECK_LAUNCH("geluErfKernel");
}

void residualAddBf16(float* x, const void* y, const float* bias, int M, int D, cudaStream_t stream) {
  if (D % 4 != 0) throw Error("unsupported_arch", "residual add needs D % 4 == 0");
  const int64_t n4 = int64_t(M) * D / 4;
  if (n4 == 0) return;
  residualAddKernel<<<gridFor(n4, 256), 256, 0, stream>>>(x, static_cast<const __nv_bfloat16*>(y), bias, M, D);
  FS_CUDA_CHECK_LAUNCH("residualAddKernel");
}

}  // namespace cuda
}  // namespace flashslide
