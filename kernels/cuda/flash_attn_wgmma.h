// flashslide CUDA backend: the Hopper (sm_90a) flash attention forward, wgmma + TMA
// (flash_attn_wgmma.cu). Internal to the backend: callers go through flashAttentionForward,
// whose variant registry (flash_attn_fwd.cu) lists these as the "_wgmma" variants.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace flashslide {
namespace cuda {

// True when the current device is compute capability 9.0 (H100/H200), the only one the
// sm_90a machine code runs on.
bool flashWgmmaAvailable();

// Head dim d = 64, 80 or 128, same layouts and contract as flashAttentionForward. stages:
// K/V ring depth (2 or 3); consumers: warpgroups of 64 query rows per CTA (2 or 3); overlap:
// FA3's intra-warpgroup overlap of softmax with the PV GEMM. Built: d = 64 with (2|3 stages,
// 2 consumers) and (2 stages, 3 consumers), each with and without overlap, and (3 stages,
// 3 consumers) without; d = 80 with 2 stages and 2 or 3 consumers; d = 128 with 2 and 2.
// persistent (d = 64 and 80, 2 stages, 3 consumers): one CTA per SM looping over the query tiles.
// seqLens: as flashAttentionForward's (device [B] or nullptr).
void flashWgmma(const __nv_bfloat16* qkv, __nv_bfloat16* out, int B, int N, int H, int d, int64_t ldqkv, int64_t ldo,
                float scaleLog2, cudaStream_t stream, int stages, int consumers, bool overlap, bool persistent = false,
                const int* seqLens = nullptr);

}  // namespace cuda
}  // namespace flashslide
