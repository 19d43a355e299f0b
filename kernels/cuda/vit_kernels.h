// flashslide CUDA backend: the small memory-bound kernels of the ViT forward.
//
// Each launcher is asynchronous on `stream` and checks its launch. Matrices are row-major
// with an explicit row stride (elements); bf16 is passed as void* so that host-only C++
// can include this header.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace flashslide {
namespace cuda {

// layernorm.cu ----------------------------------------------------------------------------
// y[r] = (x[r] - mean) / sqrt(var + eps) * w + b for each of M rows of D floats.
// Statistics in fp32 from registers (two passes over the row held by one warp, so the
// variance is computed around the mean, not as E[x^2] - mean^2). D % 4 == 0, D <= 2048.
void layerNormToBf16(const float* x, int M, int D, const float* w, const float* b, float eps, void* y,
                     cudaStream_t stream);
void layerNormToF32(const float* x, int M, int D, const float* w, const float* b, float eps, float* y,
                    cudaStream_t stream);
constexpr int kLayerNormMaxDim = 2048;

// elementwise.cu --------------------------------------------------------------------------
// h [M, 2*Hm] (row stride ldh, bias already added by the fc1 GEMM epilogue) ->
// h[:, :Hm] = silu(h[:, :Hm]) * h[:, Hm:2Hm], in place (timm SwiGLUPacked). fc2 then reads
// the first Hm columns with the same row stride.
void swigluInPlace(void* h, int M, int Hm, int64_t ldh, cudaStream_t stream);
// h[:, :F] = GELU(h) with the exact erf form (when the GEMM epilogue only added the bias).
void geluErfInPlace(void* h, int M, int F, int64_t ldh, cudaStream_t stream);
// x[M, D] += y[M, D] (bf16) + bias[D]: residual add when the GEMM could not accumulate into
// the fp32 residual stream itself (fallback path; layer scale is folded into y's weights).
void residualAddBf16(float* x, const void* y, const float* bias, int M, int D, cudaStream_t stream);

// out[i, :] = BF16(x[rows[i], :]) for i < nRows; x is [*, D] fp32, rows on the device, in range.
// Rounding as engine/bf16.h (nearest even, NaN -> 0x7fc0): bit-identical to the host.
void gatherRowsBf16(const float* x, const int32_t* rows, int64_t nRows, int D, void* out, cudaStream_t stream);
// sums[j] = sum over i < nRows of float(bf16 y[i, j]), in double, rows in order (one thread per
// column): bit-identical to the host's loop (engine.cpp).
void columnSumsBf16(const void* y, int64_t nRows, int D, double* sums, cudaStream_t stream);

// patch_embed.cu --------------------------------------------------------------------------
// rgb [B, H, W, 3] uint8 -> cols [B*gh*gw, ldc] bf16, one row per patch, columns ordered
// (channel, ky, kx) like the conv weight [D, 3, p, p]; value (u/255 - mean[c]) / std[c].
// Columns 3*p*p .. ldc-1 are written as zero (the GEMM runs over the padded K).
struct Normalize {
  float scale[3];  // 1 / (255 * std[c])
  float shift[3];  // -mean[c] / std[c]
};
void im2colNormalize(const uint8_t* rgb, int B, int H, int W, int p, const Normalize& norm, void* cols, int ldc,
                     cudaStream_t stream);
// Token assembly for x [B, T, D] fp32, T = prefix + Np:
//   x[b, prefix + n] = patch[b*Np + n] + patchBias + pos[posPrefix + n]
//   x[b, k < prefix] = token_k + (posPrefix ? pos[k] : 0), token_0 = cls (if hasCls), then reg
// pos: [posPrefix + Np, D]; prefixTokens: [prefix, D] (cls first, then registers).
// patch is fp32, or bf16 when patchBf16 (the fallback when no fp32-output GEMM is available).
void assembleTokens(const void* patch, bool patchBf16, const float* patchBias, const float* pos, int posPrefix,
                    const float* prefixTokens, int prefix, int B, int Np, int D, float* x, cudaStream_t stream);

// Token dropping (engine.h KeptPatches). im2colNormalize of the listed patches only: row r of
// cols is patch patchIdx[r] of the whole batch (b * gh*gw + index in image b's grid).
void im2colNormalizeGather(const uint8_t* rgb, int H, int W, int p, const Normalize& norm, const int32_t* patchIdx,
                           int64_t nRows, void* cols, int ldc, cudaStream_t stream);
// Token assembly for the padded batch x [rows, D] of a kept forward, one map entry per row:
//   {r >= 0, n}: patch GEMM row r + patchBias + pos[posPrefix + n] (n: the patch's grid index)
//   {-2 - k, 0}: prefix token k (+ pos[k] when posPrefix)
//   {-1, 0}    : padding, zero
void assembleTokensMapped(const void* patch, bool patchBf16, const float* patchBias, const float* pos, int posPrefix,
                          const float* prefixTokens, const int2* map, int64_t rows, int D, float* x, cudaStream_t stream);

}  // namespace cuda
}  // namespace flashslide
