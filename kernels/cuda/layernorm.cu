// flashslide CUDA backend: LayerNorm over the fp32 residual stream.
//
// One warp per row: a ViT row is D <= 2048 floats, i.e. at most 16 float4 per lane, which
// stay in registers between the two statistics passes and the write. The residual stream is
// kept in fp32 (our choice: 24-40 residual additions in bf16 would lose ~3 significant bits
// each time a small branch output is added to a large running value); LayerNorm reads it in
// fp32 and writes bf16 for the next GEMM, or fp32 for the final norm (the engine's output).
// Memory-bound: one read of x, one write of y; 4 rows per 128-thread CTA.
#include <cuda_bf16.h>

#include "cuda_check.h"
#include "vit_kernels.h"

namespace flashslide {
namespace cuda {

namespace {

constexpr int kRowsPerCta = 4;
constexpr int kMaxVec = kLayerNormMaxDim / 128;  // float4 per lane

__device__ __forceinline__ void storeRow4(float* y, float4 v) { *reinterpret_cast<float4*>(y) = v; }
__device__ __forceinline__ void storeRow4(__nv_bfloat16* y, float4 v) {
  __nv_bfloat162 a = __floats2bfloat162_rn(v.x, v.y), b = __floats2bfloat162_rn(v.z, v.w);
  uint2 u;
  u.x = *reinterpret_cast<uint32_t*>(&a);
  u.y = *reinterpret_cast<uint32_t*>(&b);
  *reinterpret_cast<uint2*>(y) = u;
}

__device__ __forceinline__ float warpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename OutT>
__global__ void __launch_bounds__(32 * kRowsPerCta)
    layerNormKernel(const float* __restrict__ x, int M, int D, const float* __restrict__ w,
                    const float* __restrict__ b, float eps, OutT* __restrict__ y) {
  const int row = blockIdx.x * kRowsPerCta + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= M) return;
  const float* xr = x + int64_t(row) * D;
  float4 v[kMaxVec];
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < kMaxVec; ++i) {
    const int c = i * 128 + lane * 4;
    v[i] = c < D ? *reinterpret_cast<const float4*>(xr + c) : make_float4(0.f, 0.f, 0.f, 0.f);
    sum += (v[i].x + v[i].y) + (v[i].z + v[i].w);
  }
  const float mean = warpSum(sum) / D;
  float sq = 0.f;
#pragma unroll
  for (int i = 0; i < kMaxVec; ++i) {
    const int c = i * 128 + lane * 4;
    if (c < D) {
      const float a = v[i].x - mean, bb = v[i].y - mean, cc = v[i].z - mean, dd = v[i].w - mean;
      sq += (a * a + bb * bb) + (cc * cc + dd * dd);
    }
  }
  const float rstd = rsqrtf(warpSum(sq) / D + eps);
  OutT* yr = y + int64_t(row) * D;
#pragma unroll
  for (int i = 0; i < kMaxVec; ++i) {
    const int c = i * 128 + lane * 4;
    if (c < D) {
      const float4 g = *reinterpret_cast<const float4*>(w + c), bi = *reinterpret_cast<const float4*>(b + c);
      float4 o;
      o.x = (v[i].x - mean) * rstd * g.x + bi.x;
      o.y = (v[i].y - mean) * rstd * g.y + bi.y;
      o.z = (v[i].z - mean) * rstd * g.z + bi.z;
      o.w = (v[i].w - mean) * rstd * g.w + bi.w;
      storeRow4(yr + c, o);
    }
  }
}

template <typename OutT>
void launch(const float* x, int M, int D, const float* w, const float* b, float eps, OutT* y, cudaStream_t s) {
  if (D % 4 != 0 || D > kLayerNormMaxDim)
    throw Error("unsupported_arch", "CUDA LayerNorm needs D % 4 == 0 and D <= 2048, got D=" + std::to_string(D));
  if (M <= 0) return;
  layerNormKernel<OutT><<<(M + kRowsPerCta - 1) / kRowsPerCta, 32 * kRowsPerCta, 0, s>>>(x, M, D, w, b, eps, y);
  FS_CUDA_CHECK_LAUNCH("layerNormKernel");
}

}  // namespace

void layerNormToBf16(const float* x, int M, int D, const float* w, const float* b, float eps, void* y,
                     cudaStream_t stream) {
  launch(x, M, D, w, b, eps, static_cast<__nv_bfloat16*>(y), stream);
}

void layerNormToF32(const float* x, int M, int D, const float* w, const float* b, float eps, float* y,
                    cudaStream_t stream) {
  launch(x, M, D, w, b, eps, y, stream);
}

}  // namespace cuda
}  // namespace flashslide
