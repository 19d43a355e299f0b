// flashslide CUDA backend: attention entry points (flash forward + plain reference).
//
// Layouts are the ones the surrounding GEMMs produce and consume (timm Attention):
//   qkv [B, N, 3, H, d] bf16, row stride ldqkv elements per token (normally 3*H*d)
//   out [B, N, H, d]    bf16, row stride ldo elements per token   (normally H*d)
// out = softmax(q k^T * scale) v for every (b, h), non-causal, no mask.
// Pointers must be 16-byte aligned and ldqkv, ldo multiples of 8 (16-byte rows).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

namespace flashslide {
namespace cuda {

// One compiled tile configuration of the flash kernel. flashDefaultVariantName picks the
// default per head dim and sequence length; the others exist so the GPU test covers them
// and the benchmark can show which is fastest on the machine at hand.
struct FlashVariant {
  int headDim;
  int warps;    // warps per CTA
  int mTiles;   // 16-row MMA tiles per warp: CTA query tile BM = 16 * warps * mTiles
  int blockN;   // keys per K/V tile
  int minBlocks = 1;     // __launch_bounds__ min CTAs per SM (register cap): name suffix _b<n>
  int flags = 0;  // 1: Q re-read from smem per k-step (_qs); 2: lazy O rescale (_lr);
                  // 4: K/V stages of 2*blockN keys, one barrier per two tiles (_s2)
  std::string name() const;  // e.g. "d64_w4_m2_n64", "d80_w4_m2_n64_qs"
};

bool flashSupportedHeadDim(int d);               // 64, 80, 128
std::string flashDefaultVariantName(int d, int B, int N, int H);  // what variant = -1 runs
std::vector<FlashVariant> flashVariants(int d);  // empty if unsupported

// variant: index into flashVariants(d); -1 = flashDefaultVariantName(d, B, N, H) (or
// $FLASHSLIDE_ATTN_VARIANT if it names a variant of this head dim). Asynchronous on `stream`; throws flashslide::Error on a
// bad argument or launch failure.
// seqLens (device, [B], each in 1..N; nullptr = all N): token dropping pads every sequence of
// the batch to N rows; sequence b's keys are its first seqLens[b] rows, the rest are masked
// like keys past N. Its padding query rows are computed (finite, never read) and stored.
void flashAttentionForward(const void* qkv, void* out, int B, int N, int H, int d,
                           int64_t ldqkv, int64_t ldo, float scale, cudaStream_t stream,
                           int variant = -1, const int* seqLens = nullptr);

// Plain reference kernel (attention_ref.cu): one thread per query row, fp32 scores,
// accurate expf, online softmax over K/V staged in shared memory. Writes fp32
// out [B, N, H, d] (row stride H*d). d in {32, 64, 80, 96, 128}. For tests only: slow.
void attentionReference(const void* qkv, float* out, int B, int N, int H, int d, int64_t ldqkv,
                        float scale, cudaStream_t stream);

}  // namespace cuda
}  // namespace flashslide
