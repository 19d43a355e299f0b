// flashslide CUDA backend: plain reference attention kernel, for tests only.
//
// Deliberately simple and independent of flash_attn_fwd.cu's tricks: no tensor cores, no
// ldmatrix, no exp2 folding, fp32 throughout. One thread owns one query row (q and the
// output accumulator in registers/local memory), the CTA's 64 threads stage 32 keys and
// values at a time in shared memory as fp32, and each thread runs the online softmax with
// accurate expf over every key. It is O(N) memory like the flash kernel, so the tests can
// check every row of N = 65541 against it, while the float64 CPU reference checks a
// sample of rows (a CPU pass over all rows would take minutes).
#include <cuda_bf16.h>

#include <cmath>

#include "cuda_check.h"
#include "flash_attn.h"

namespace flashslide {
namespace cuda {

namespace {

constexpr int kRefRows = 64;  // query rows per CTA = threads per CTA
constexpr int kRefKeys = 32;  // keys staged per step (2 x 32 x 128 x 4 B = 32 KB static smem at d=128)

template <int D>
__global__ void __launch_bounds__(kRefRows)
    attentionRefKernel(const __nv_bfloat16* __restrict__ qkv, float* __restrict__ out, int N, int H, int64_t ldqkv,
                       float scale) {
  __shared__ float sK[kRefKeys][D];
  __shared__ float sV[kRefKeys][D];
  const int h = blockIdx.y, b = blockIdx.z;
  const int row = blockIdx.x * kRefRows + threadIdx.x;
  const int64_t HD = int64_t(H) * D;
  const __nv_bfloat16* base = qkv + int64_t(b) * N * ldqkv;

  float q[D], o[D];
  const bool active = row < N;
#pragma unroll
  for (int c = 0; c < D; ++c) {
    q[c] = active ? __bfloat162float(base[int64_t(row) * ldqkv + int64_t(h) * D + c]) : 0.f;
    o[c] = 0.f;
  }
  float m = -INFINITY, l = 0.f;

  for (int j0 = 0; j0 < N; j0 += kRefKeys) {
    const int nk = min(kRefKeys, N - j0);
    __syncthreads();
    for (int i = threadIdx.x; i < kRefKeys * D; i += kRefRows) {
      const int j = i / D, c = i % D;
      const bool ok = j < nk;
      const int64_t off = int64_t(j0 + j) * ldqkv + int64_t(h) * D + c;
      sK[j][c] = ok ? __bfloat162float(base[off + HD]) : 0.f;
      sV[j][c] = ok ? __bfloat162float(base[off + 2 * HD]) : 0.f;
    }
    __syncthreads();
    for (int j = 0; j < nk; ++j) {
      float s = 0.f;
#pragma unroll
      for (int c = 0; c < D; ++c) s = fmaf(q[c], sK[j][c], s);
      s *= scale;
      const float mNew = fmaxf(m, s);
      const float alpha = expf(m - mNew);  // expf(-inf) = 0 on the first key
      const float p = expf(s - mNew);
      l = l * alpha + p;
#pragma unroll
      for (int c = 0; c < D; ++c) o[c] = fmaf(o[c], alpha, p * sV[j][c]);
      m = mNew;
    }
  }
  if (active) {
    float* dst = out + (int64_t(b) * N + row) * HD + int64_t(h) * D;
#pragma unroll
    for (int c = 0; c < D; ++c) dst[c] = o[c] / l;
  }
}

template <int D>
void launchRef(const void* qkv, float* out, int B, int N, int H, int64_t ldqkv, float scale, cudaStream_t s) {
  const dim3 grid((N + kRefRows - 1) / kRefRows, H, B);
  attentionRefKernel<D><<<grid, kRefRows, 0, s>>>(static_cast<const __nv_bfloat16*>(qkv), out, N, H, ldqkv, scale);
  FS_CUDA_CHECK_LAUNCH("attentionRefKernel");
}

}  // namespace

void attentionReference(const void* qkv, float* out, int B, int N, int H, int d, int64_t ldqkv, float scale,
                        cudaStream_t stream) {
  switch (d) {
    case 32: return launchRef<32>(qkv, out, B, N, H, ldqkv, scale, stream);
    case 64: return launchRef<64>(qkv, out, B, N, H, ldqkv, scale, stream);
    case 80: return launchRef<80>(qkv, out, B, N, H, ldqkv, scale, stream);
    case 96: return launchRef<96>(qkv, out, B, N, H, ldqkv, scale, stream);
    case 128: return launchRef<128>(qkv, out, B, N, H, ldqkv, scale, stream);
    default:
      throw Error("unsupported_arch", "reference attention kernel: head dim " + std::to_string(d) +
                                          " not instantiated (32, 64, 80, 96, 128)");
  }
}

}  // namespace cuda
}  // namespace flashslide
