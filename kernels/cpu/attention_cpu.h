// flashslide CPU backend: non-causal multi-head attention.
//
// Input layout is exactly what the fused qkv Linear writes (timm Attention):
//   qkv [B, T, 3, H, d] row-major -> row t of item b holds q(h=0..H-1), k(...), v(...)
// Output layout is what the proj Linear reads:
//   out [B, T, H, d] row-major (== [B, T, D] with D = H*d)
// out = softmax(q k^T * scale) v per (b, h).
//
// attention_flash is the production kernel (see attention_cpu.cpp): tiled over query
// and key blocks with an online softmax, O(T*D) extra memory, never a T x T matrix.
// attention_reference is the naive double-precision oracle for tests.
#pragma once

#include <cstddef>
#include <vector>

namespace flashslide {

// Scratch owned by the caller so one allocation serves every layer of a forward pass.
struct AttentionWorkspace {
  std::vector<float> packed;  // per (b, h): Q [Tq, dp], K^T [dp, Tk], V [Tk, dp]
};

// Tile sizes chosen for the given head dim (exposed so tests can cover partial tiles).
struct AttentionTiles {
  int blockQ;  // query rows per task (multiple of the 4-row micro-kernel)
  int blockK;  // keys per inner tile (multiple of 16); K^T and V tiles ~ L2-resident
};
AttentionTiles attentionTiles(int headDim);

// Instruction-set variant of the tile kernel. Auto picks the best the CPU supports;
// the others exist so tests can cover every variant on one machine.
enum class AttentionIsa { Auto, Baseline, Avx2, Avx512 };
bool attentionIsaSupported(AttentionIsa isa);
const char* attentionIsaName(AttentionIsa isa);

// scale is normally 1/sqrt(d). Parallel over (b, h, query block) with OpenMP.
// Throws std::invalid_argument if `isa` is not supported by this CPU.
void attention_flash(const float* qkv, int B, int T, int H, int d, float scale, float* out,
                     AttentionWorkspace& ws, AttentionIsa isa = AttentionIsa::Auto);

// Naive reference: one score row at a time in double. O(T) extra memory per thread.
void attention_reference(const float* qkv, int B, int T, int H, int d, float scale, float* out);

}  // namespace flashslide
