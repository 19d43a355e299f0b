// flashslide CUDA backend: patch embedding around the patch GEMM.
//
//   im2colNormalize: uint8 RGB [B, H, W, 3] -> bf16 patch rows [B*Np, ldc], normalisation
//     (u/255 - mean)/std fused in, so the pixels cross the PCIe bus and device memory once as
//     bytes (a quarter of fp32). Column k = (c*p + ky)*p + kx matches the conv weight
//     [D, 3, p, p] flattened to [D, 3p^2]; columns 3p^2..ldc-1 are zero so that the GEMM can
//     run over K = ldc (a multiple of 8: 16-byte rows for cuBLASLt; 588 -> 592 at p = 14).
//     One thread per output element: consecutive threads write consecutive columns
//     (coalesced bf16 stores); the byte reads are strided by 3 but hit the same cache lines.
//   assembleTokens: the fp32 patch GEMM output plus conv bias plus the (device-cached,
//     resampled) position embedding, and the cls/register tokens, into the fp32 residual
//     stream x [B, T, D], following timm _pos_embed (no_embed_class decides whether the
//     prefix tokens get position entries).
#include <cuda_bf16.h>

#include "cuda_check.h"
#include "vit_kernels.h"

namespace flashslide {
namespace cuda {

namespace {

// rows: output rows; patchIdx (nullable): the batch-wide patch each row takes (else row = patch).
__global__ void im2colKernel(const uint8_t* __restrict__ rgb, int64_t rows, const int32_t* __restrict__ patchIdx, int H,
                             int W, int p, Normalize norm, __nv_bfloat16* __restrict__ cols, int ldc) {
  const int gw = W / p, gh = H / p;
  const int K = 3 * p * p;
  const int64_t n = rows * ldc;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / ldc;
    const int k = int(i - row * ldc);
    float v = 0.f;
    if (k < K) {
      const int64_t g = patchIdx ? int64_t(patchIdx[row]) : row;
      const int b = int(g / (int64_t(gh) * gw));
      const int patch = int(g - int64_t(b) * gh * gw);
      const int gy = patch / gw, gx = patch - gy * gw;
      const int c = k / (p * p), rem = k - c * p * p;
      const int ky = rem / p, kx = rem - ky * p;
      const uint8_t u = rgb[((int64_t(b) * H + gy * p + ky) * W + gx * p + kx) * 3 + c];
      v = fmaf(float(u), norm.scale[c], norm.shift[c]);
    }
    cols[i] = __float2bfloat16_rn(v);
  }
}

__device__ __forceinline__ float toF32(float v) { return v; }
__device__ __forceinline__ float toF32(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename PatchT>
__global__ void assembleKernel(const PatchT* __restrict__ patch, const float* __restrict__ patchBias,
                               const float* __restrict__ pos, int posPrefix, const float* __restrict__ prefixTokens,
                               int prefix, int B, int Np, int D, float* __restrict__ x) {
  const int T = prefix + Np;
  const int64_t n = int64_t(B) * T * D;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t tok = i / D;
    const int c = int(i - tok * D);
    const int b = int(tok / T), t = int(tok - int64_t(b) * T);
    float v;
    if (t < prefix) {
      v = prefixTokens[int64_t(t) * D + c] + (posPrefix ? pos[int64_t(t) * D + c] : 0.f);
    } else {
      const int np = t - prefix;
      v = toF32(patch[(int64_t(b) * Np + np) * D + c]) + patchBias[c] + pos[(int64_t(posPrefix) + np) * D + c];
    }
    x[i] = v;
  }
}

template <typename PatchT>
__global__ void assembleMappedKernel(const PatchT* __restrict__ patch, const float* __restrict__ patchBias,
                                     const float* __restrict__ pos, int posPrefix,
                                     const float* __restrict__ prefixTokens, const int2* __restrict__ map,
                                     int64_t rows, int D, float* __restrict__ x) {
  const int64_t n = rows * D;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t tok = i / D;
    const int c = int(i - tok * D);
    const int2 m = map[tok];
    float v = 0.f;
    if (m.x >= 0) {
      v = toF32(patch[int64_t(m.x) * D + c]) + patchBias[c] + pos[(int64_t(posPrefix) + m.y) * D + c];
    } else if (m.x <= -2) {
      const int k = -2 - m.x;
      v = prefixTokens[int64_t(k) * D + c] + (posPrefix ? pos[int64_t(k) * D + c] : 0.f);
    }
    x[i] = v;
  }
}

inline int gridFor(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return int(blocks < 65536 * 8 ? blocks : 65536 * 8);
}

}  // namespace

void im2colNormalize(const uint8_t* rgb, int B, int H, int W, int p, const Normalize& norm, void* cols, int ldc,
                     cudaStream_t stream) {
  const int64_t n = int64_t(B) * (H / p) * (W / p) * ldc;
  if (n == 0) return;
  im2colKernel<<<gridFor(n, 256), 256, 0, stream>>>(rgb, int64_t(B) * (H / p) * (W / p), nullptr, H, W, p, norm,
                                                    static_cast<__nv_bfloat16*>(cols), ldc);
  FS_CUDA_CHECK_LAUNCH("im2colKernel");
}

void im2colNormalizeGather(const uint8_t* rgb, int H, int W, int p, const Normalize& norm, const int32_t* patchIdx,
                           int64_t nRows, void* cols, int ldc, cudaStream_t stream) {
  const int64_t n = nRows * ldc;
  if (n == 0) return;
  im2colKernel<<<gridFor(n, 256), 256, 0, stream>>>(rgb, nRows, patchIdx, H, W, p, norm,
                                                    static_cast<__nv_bfloat16*>(cols), ldc);
  FS_CUDA_CHECK_LAUNCH("im2colKernel (gather)");
}

void assembleTokensMapped(const void* patch, bool patchBf16, const float* patchBias, const float* pos, int posPrefix,
                          const float* prefixTokens, const int2* map, int64_t rows, int D, float* x, cudaStream_t stream) {
  const int64_t n = rows * D;
  if (n == 0) return;
  if (patchBf16)
    assembleMappedKernel<<<gridFor(n, 256), 256, 0, stream>>>(static_cast<const __nv_bfloat16*>(patch), patchBias, pos,
                                                              posPrefix, prefixTokens, map, rows, D, x);
  else
    assembleMappedKernel<<<gridFor(n, 256), 256, 0, stream>>>(static_cast<const float*>(patch), patchBias, pos,
                                                              posPrefix, prefixTokens, map, rows, D, x);
  FS_CUDA_CHECK_LAUNCH("assembleMappedKernel");
}

void assembleTokens(const void* patch, bool patchBf16, const float* patchBias, const float* pos, int posPrefix,
                    const float* prefixTokens, int prefix, int B, int Np, int D, float* x, cudaStream_t stream) {
  const int64_t n = int64_t(B) * (prefix + Np) * D;
  if (n == 0) return;
  if (patchBf16)
    assembleKernel<<<gridFor(n, 256), 256, 0, stream>>>(static_cast<const __nv_bfloat16*>(patch), patchBias, pos,
                                                        posPrefix, prefixTokens, prefix, B, Np, D, x);
  else
    assembleKernel<<<gridFor(n, 256), 256, 0, stream>>>(static_cast<const float*>(patch), patchBias, pos, posPrefix,
                                                        prefixTokens, prefix, B, Np, D, x);
  FS_CUDA_CHECK_LAUNCH("assembleKernel");
}

}  // namespace cuda
}  // namespace flashslide
