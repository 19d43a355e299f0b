// flashslide CUDA backend: flash attention forward for Hopper (sm_90a), wgmma + TMA,
// warp-specialised. Same function and layouts as flash_attn_fwd.cu (see flash_attn.h); this
// file is only the faster engine for it on H100/H200, selected through the variant registry.
//
// Algorithm (one-pass online softmax, FlashAttention-2/3), per CTA = one (batch b, head h,
// query tile of BM = 64 x CONSUMERS rows), 1 + CONSUMERS warpgroups:
//   WG0, producer (setmaxnreg 24): one thread issues TMA bulk-tensor loads: the Q tile once,
//       then K_j and V_j into a ring of STAGES stages. Completion is counted in bytes on the
//       stage's "full" mbarriers (separate for K and V, so S = Q K^T starts before V lands);
//       consumers hand a stage back on its "empty" mbarrier (one arrive per consumer warp).
//   WG1.., consumers (setmaxnreg 240 with 2 consumers, 160 with 3): 64 query rows each, all
//   state in registers:
//       S   = Q K_j^T        wgmma m64n128k16 x D/16, A = Q and B = K from shared memory
//       m'  = max(m, rowmax S); P = exp2(S c - m' c), c = scale * log2(e)
//       l   = l exp2((m - m') c) + rowsum P;  O *= exp2((m - m') c)
//       O  += P V_j          wgmma m64n64k16 (+ m64n16k16 or m64n64k16 for the second panel)
//                            x 8, A = P from registers (bf16, repacked from S's accumulators),
//                            B = V from shared memory, transposed by wgmma
//     OVERLAP (FA3's intra-warpgroup overlap): tile j's S GEMM and tile j-1's PV GEMM are
//       issued back to back; the softmax of S_j runs while PV_{j-1} is still on the tensor
//       cores. Costs no registers here: P_{j-1} lives packed in bf16 while S_j is in fp32.
//   Epilogue: O / l. D = 64: staged through the consumer's own (no longer needed) Q rows and
//   written with 16-byte stores; other D: 4-byte stores straight from registers. Query rows
//   >= N are never stored.
//
// Register layouts (per warp w of a consumer warpgroup, rows 16w..16w+15, g = lane / 4,
// t = lane % 4): the wgmma fp32 accumulator of an m64nX tile holds, for every 8-column block
// jb, d[4jb + 0..1] = row g, cols 8jb + 2t + {0,1}; d[4jb + 2..3] = row g + 8, same cols.
// That is also the A-register fragment order of an m64k16 wgmma, so P needs no shuffles.
//
// Head dims D = 64, 80, 128, as column panels: every tile is stored as panel 0 (columns 0-63,
// 128-byte rows, 128-byte swizzle) followed by panel 1 (columns 64..D-1: none for 64; 16
// columns = 32-byte rows in the 32-byte swizzle for 80, so 80 is not padded to 96; 64 columns
// in the 128-byte swizzle for 128). One TMA box per panel and 64 rows, its swizzle matching
// the wgmma descriptor's (both act on address bits, so panel bases are 1024-byte aligned).
//
// Memory layout:
//   global qkv [B, N, 3, H, D] (row stride ldqkv elements): TMA tensor maps over
//     {3*H*D, N, B} (strides ldqkv*2, N*ldqkv*2 bytes), boxes {64 or D-64 elements, 64 rows,
//     1}; rows >= N of the last tile are zero-filled by TMA (so no garbage reaches the MMAs)
//     and their scores masked to -inf. out [B, N, H, D], row stride ldo.
//   shared: Q [BM][D], per stage K [128][D] and V [128][D], bf16, each as its panels. K is
//     K-major for S = Q K^T (descriptor start advanced by 32 bytes per 16-wide k-step inside
//     a 128-byte swizzle atom); V is MN-major for O = P V (start advanced by 16 rows per
//     k-step; 8-row groups 8 x row-bytes apart).
// Shared memory: BM x D x 2 (Q) + STAGES x 2 x 128 x D x 2 (K, V) + barriers: one CTA per SM.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstring>
#include <string>

#include "cuda_check.h"
#include "flash_attn_wgmma.h"

// wgmma and setmaxnreg exist only in the sm_90a target; the other targets this file is built
// for (sm_80) get an empty kernel that the host side never launches there.
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FS_WGMMA_DEVICE 1
#else
#define FS_WGMMA_DEVICE 0
#endif

namespace flashslide {
namespace cuda {

namespace {

constexpr int kBoxRows = 64;         // rows per TMA box
constexpr int kBN = 128;             // keys per K/V stage

// Column panels of a D-wide row (see the header): panel 0 is 64 wide, panel 1 D - 64.
template <int D>
struct Panels {
  static_assert(D == 64 || D == 80 || D == 128, "wgmma attention: head dim 64, 80 or 128");
  static constexpr int kW1 = D - 64;                 // 0, 16 or 64 elements
  static constexpr int kRowBytes1 = kW1 * 2;         // 0, 32 or 128
  static constexpr int kRowBytes = D * 2;
  static constexpr int kTileKVBytes = kBN * kRowBytes;
};

// CONSUMERS warpgroups of 64 query rows each (BM = 64 * CONSUMERS) plus the producer.
template <int D, int STAGES, int CONSUMERS>
struct WgmmaSmem {
  using P = Panels<D>;
  static constexpr int kBM = 64 * CONSUMERS;
  static constexpr int kThreads = 128 * (1 + CONSUMERS);
  // setmaxnreg: the producer keeps 24 registers, the consumers share the rest of the 64K
  // (a multiple of 8, at most 240): 240 with 2 consumers, 160 with 3.
  static constexpr int kConsumerRegs = (65536 / 128 - 24) / CONSUMERS / 8 * 8 > 240 ? 240 : (65536 / 128 - 24) / CONSUMERS / 8 * 8;
  static constexpr int kTileQBytes = kBM * P::kRowBytes;
  static constexpr int kQ = 0;
  static constexpr int kK0 = kTileQBytes;  // stage s: K at kK0 + s*2*tile, V right after it
  // D = 64 stages O through its own buffer (one 128-byte row per query row), so that the next
  // tile's Q can land while a persistent CTA is still writing this tile's O.
  static constexpr int kO = kTileQBytes + STAGES * 2 * P::kTileKVBytes;
  static constexpr int kBarriers = kO + (D == 64 ? kBM * 128 : 0);
  // barriers: fullQ, emptyQ, fullK[S], fullV[S], empty[S]
  static constexpr int kBytesUsed = kBarriers + 8 * (2 + 3 * STAGES);
  static constexpr size_t kDynamicBytes = size_t(kBytesUsed) + 1024;  // + alignment slack
  static_assert(kDynamicBytes <= 227 * 1024, "wgmma attention: tiles exceed shared memory");
};

#if FS_WGMMA_DEVICE
__device__ __forceinline__ uint32_t smemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// ---- mbarrier + TMA -------------------------------------------------------------------
__device__ __forceinline__ void mbarInit(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void mbarExpectTx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbarArrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Blocks until the phase with parity `parity` has completed. A fresh barrier is in phase 0,
// so waiting for parity 1 returns at once (how the producer's first pass skips "empty").
__device__ __forceinline__ void mbarWait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT;\n"
      "}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
// One box {64 elements, 64 rows, 1} at (c0, c1, c2) into 128B-swizzled shared memory.
__device__ __forceinline__ void tmaLoad3d(uint32_t dst, const CUtensorMap* map, uint32_t bar, int c0, int c1, int c2) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5}], [%2];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2)
      : "memory");
}

// ---- wgmma ------------------------------------------------------------------------------
// Shared-memory matrix descriptor (PTX ISA "matrix descriptor format"): start address,
// leading- and stride-dimension byte offsets, all in 16-byte units, and the swizzle mode in
// bits 62-63 (1 = 128-byte, 3 = 32-byte). Tiles here are swizzle atoms of 8 rows stacked along
// the rows, so the stride between 8-row groups is 8 x the panel's row bytes for both operand
// majors; the other offset is never used at these shapes (K-major: a k-step stays inside one
// row of the atom; MN-major: each wgmma's N is exactly one atom wide), and is set to what the
// canonical layouts would put there.
template <int ROW_BYTES>
__device__ __forceinline__ uint64_t descSwizzled(uint32_t addr, uint32_t leadingBytes) {
  static_assert(ROW_BYTES == 128 || ROW_BYTES == 32, "panel rows are 128 or 32 bytes");
  constexpr uint64_t mode = ROW_BYTES == 128 ? 1 : 3;
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t(leadingBytes >> 4) << 16) | (uint64_t(8 * ROW_BYTES >> 4) << 32) |
         (mode << 62);
}
template <int ROW_BYTES>
__device__ __forceinline__ uint64_t descKMajor(uint32_t addr) { return descSwizzled<ROW_BYTES>(addr, 16); }
template <int ROW_BYTES>
__device__ __forceinline__ uint64_t descMNMajor(uint32_t addr) { return descSwizzled<ROW_BYTES>(addr, 8 * ROW_BYTES); }

__device__ __forceinline__ void wgmmaFence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmmaCommit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmmaWait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Registers a wgmma reads or writes asynchronously must not be touched (or moved by the
// compiler) between the issue and the wait: this ties them to the asm ordering.
template <int N>
__device__ __forceinline__ void fenceRegs(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
template <int N>
__device__ __forceinline__ void fenceRegs(uint32_t (&r)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int k = 0; k < 4; ++k) asm volatile("" : "+r"(r[i][k])::"memory");
}

// D[64 x 128] (+)= A[64 x 16] (smem, K-major) * B[16 x 128] (smem, K-major); kScaleD = 0: D = A*B.
template <int kScaleD>
__device__ __forceinline__ void wgmma64x128SS(float (&d)[64], uint64_t descA, uint64_t descB) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(descA), "l"(descB), "n"(kScaleD));
}

// D[64 x 64] += A[64 x 16] (registers) * B[16 x 64] (smem, MN-major: imm-trans-b = 1)
__device__ __forceinline__ void wgmma64x64RS(float (&d)[32], const uint32_t (&a)[4], uint64_t descB) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(descB));
}

// D[64 x 16] += A[64 x 16] (registers) * B[16 x 16] (smem, MN-major: imm-trans-b = 1)
__device__ __forceinline__ void wgmma64x16RS(float (&d)[8], const uint32_t (&a)[4], uint64_t descB) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7}, {%8, %9, %10, %11}, %12, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(descB));
}

__device__ __forceinline__ float fastExp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ uint32_t packBf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  uint32_t u;
  memcpy(&u, &v, sizeof u);
  return u;
}
#endif  // FS_WGMMA_DEVICE

// Per consumer thread: the two query rows it holds (g and g + 8 of its warp's 16).
struct RowState {
  float m[2];
  float l[2];
};

#if FS_WGMMA_DEVICE
// S (raw scores of one 128-key tile, in place) -> P = exp2(S c - m' c); updates m, l and
// returns the factors O must be scaled by. `valid` < kBN masks the keys past N.
__device__ __forceinline__ void onlineSoftmax(float (&s)[64], RowState& st, float scaleLog2, int valid, int lane,
                                              float (&alpha)[2]) {
  if (valid < kBN) {
    const int c0 = 2 * (lane & 3);
#pragma unroll
    for (int jb = 0; jb < 16; ++jb)
#pragma unroll
      for (int e = 0; e < 2; ++e)
        if (8 * jb + c0 + e >= valid) {
          s[4 * jb + e] = -INFINITY;
          s[4 * jb + 2 + e] = -INFINITY;
        }
  }
  float mx[2] = {st.m[0], st.m[1]};
#pragma unroll
  for (int jb = 0; jb < 16; ++jb) {
    mx[0] = fmaxf(mx[0], fmaxf(s[4 * jb], s[4 * jb + 1]));
    mx[1] = fmaxf(mx[1], fmaxf(s[4 * jb + 2], s[4 * jb + 3]));
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    // A row's 128 scores live in the 4 threads of a quad.
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    // First tile: m = -inf gives alpha = exp2(-inf) = 0. Every row has a valid key in every
    // tile it sees (tile 0 starts at key 0, the last tile at a key < N), so mx is finite.
    alpha[r] = fastExp2((st.m[r] - mx[r]) * scaleLog2);
    st.m[r] = mx[r];
  }
  const float mb0 = mx[0] * scaleLog2, mb1 = mx[1] * scaleLog2;
  float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
  for (int jb = 0; jb < 16; ++jb) {
    s[4 * jb + 0] = fastExp2(fmaf(s[4 * jb + 0], scaleLog2, -mb0));
    s[4 * jb + 1] = fastExp2(fmaf(s[4 * jb + 1], scaleLog2, -mb0));
    s[4 * jb + 2] = fastExp2(fmaf(s[4 * jb + 2], scaleLog2, -mb1));
    s[4 * jb + 3] = fastExp2(fmaf(s[4 * jb + 3], scaleLog2, -mb1));
    sum0 += s[4 * jb + 0] + s[4 * jb + 1];
    sum1 += s[4 * jb + 2] + s[4 * jb + 3];
  }
  // Per-thread partial row sums: the quad reduction is done once, in the epilogue.
  st.l[0] = st.l[0] * alpha[0] + sum0;
  st.l[1] = st.l[1] * alpha[1] + sum1;
}

__device__ __forceinline__ void packP(const float (&s)[64], uint32_t (&p)[8][4]) {
#pragma unroll
  for (int kk = 0; kk < 8; ++kk) {
    p[kk][0] = packBf16(s[8 * kk + 0], s[8 * kk + 1]);
    p[kk][1] = packBf16(s[8 * kk + 2], s[8 * kk + 3]);
    p[kk][2] = packBf16(s[8 * kk + 4], s[8 * kk + 5]);
    p[kk][3] = packBf16(s[8 * kk + 6], s[8 * kk + 7]);
  }
}

template <int N>
__device__ __forceinline__ void scaleRows(float (&o)[N], const float (&alpha)[2]) {
#pragma unroll
  for (int jb = 0; jb < N / 4; ++jb) {
    o[4 * jb + 0] *= alpha[0];
    o[4 * jb + 1] *= alpha[0];
    o[4 * jb + 2] *= alpha[1];
    o[4 * jb + 3] *= alpha[1];
  }
}
#endif  // FS_WGMMA_DEVICE

// O accumulators of one consumer thread: panel 0 (64 columns) and panel 1 (D - 64 columns;
// a 1-element placeholder at D = 64 that no code touches).
template <int D>
struct OAcc {
  float o0[32];
  float o1[Panels<D>::kW1 > 0 ? Panels<D>::kW1 / 2 : 1];
};

#if FS_WGMMA_DEVICE
// Shared-memory addresses of one tile's two panels.
struct TileAddr {
  uint32_t p0, p1;
};

// S = Q K^T for one tile: D/16 k-steps of 16 along the head dim; in panel 0 each is 32 bytes
// further into the 128-byte rows, the 80-dim panel 1 is a single 32-byte k-step.
template <int D>
__device__ __forceinline__ void issueQK(float (&s)[64], TileAddr q, TileAddr k) {
  using P = Panels<D>;
  wgmma64x128SS<0>(s, descKMajor<128>(q.p0), descKMajor<128>(k.p0));
#pragma unroll
  for (int kk = 1; kk < 4; ++kk) wgmma64x128SS<1>(s, descKMajor<128>(q.p0 + 32 * kk), descKMajor<128>(k.p0 + 32 * kk));
  if constexpr (P::kW1 == 64) {
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) wgmma64x128SS<1>(s, descKMajor<128>(q.p1 + 32 * kk), descKMajor<128>(k.p1 + 32 * kk));
  } else if constexpr (P::kW1 == 16) {
    wgmma64x128SS<1>(s, descKMajor<32>(q.p1), descKMajor<32>(k.p1));
  }
}
// O += P V for one tile: 8 k-steps of 16 keys, each 16 rows further into V's panels.
template <int D>
__device__ __forceinline__ void issuePV(OAcc<D>& o, const uint32_t (&p)[8][4], TileAddr v) {
  using P = Panels<D>;
#pragma unroll
  for (int kk = 0; kk < 8; ++kk) wgmma64x64RS(o.o0, p[kk], descMNMajor<128>(v.p0 + kk * 16 * 128));
  if constexpr (P::kW1 == 64) {
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) wgmma64x64RS(o.o1, p[kk], descMNMajor<128>(v.p1 + kk * 16 * 128));
  } else if constexpr (P::kW1 == 16) {
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) wgmma64x16RS(o.o1, p[kk], descMNMajor<32>(v.p1 + kk * 16 * 32));
  }
}
template <int D>
__device__ __forceinline__ void fenceO(OAcc<D>& o) {
  fenceRegs(o.o0);
  if constexpr (Panels<D>::kW1 > 0) fenceRegs(o.o1);
}
template <int D>
__device__ __forceinline__ void scaleO(OAcc<D>& o, const float (&alpha)[2]) {
  scaleRows(o.o0, alpha);
  if constexpr (Panels<D>::kW1 > 0) scaleRows(o.o1, alpha);
}
#endif  // FS_WGMMA_DEVICE

// PERSISTENT: grid = one CTA per SM, each looping over (m-block, head, batch) work tiles,
// m-block fastest; the K/V ring and its barrier phases run on across work tiles, and Q of the
// next one is loaded as soon as the consumers' last S GEMM of the current one is done, so no
// SM idles in a prologue. Otherwise one CTA per work tile (grid = m-blocks x H x B).
template <int D, int STAGES, int CONSUMERS, bool OVERLAP, bool PERSISTENT>
__global__ void __launch_bounds__(WgmmaSmem<D, STAGES, CONSUMERS>::kThreads, 1)
    flashFwdWgmmaKernel(const __grid_constant__ CUtensorMap tmap0, const __grid_constant__ CUtensorMap tmap1,
                        __nv_bfloat16* __restrict__ out, int B, int N, const int* __restrict__ seqLens, int H,
                        int64_t ldo, float scaleLog2) {
#if FS_WGMMA_DEVICE
  using L = WgmmaSmem<D, STAGES, CONSUMERS>;
  using P = Panels<D>;
  constexpr int kBM = L::kBM, kTileQBytes = L::kTileQBytes, kTileKVBytes = P::kTileKVBytes;
  extern __shared__ unsigned char smemRaw[];
  const uint32_t raw = smemAddr(smemRaw);
  const uint32_t base = (raw + 1023) & ~1023u;
  unsigned char* smem = smemRaw + (base - raw);  // generic pointer to the aligned base
  // A tile of `rows` rows at `at`: panel 0 first, panel 1 after it.
  auto tile = [](uint32_t at, int rows) { return TileAddr{at, at + rows * 128}; };
  const uint32_t sQ = base + L::kQ;
  auto sK = [&](int s) { return base + L::kK0 + s * 2 * kTileKVBytes; };
  auto sV = [&](int s) { return base + L::kK0 + s * 2 * kTileKVBytes + kTileKVBytes; };
  const uint32_t barQ = base + L::kBarriers;
  const uint32_t emptyQ = barQ + 8;
  auto fullK = [&](int s) { return barQ + 8 * (2 + s); };
  auto fullV = [&](int s) { return barQ + 8 * (2 + STAGES + s); };
  auto empty = [&](int s) { return barQ + 8 * (2 + 2 * STAGES + s); };

  static_assert(!(OVERLAP && PERSISTENT), "the persistent kernel is built without the overlap");
  const int tid = threadIdx.x, wg = tid / 128;
  // Keys of sequence b: N, or fewer when tokens were dropped (rows past them are padding rows
  // of the same sequence: loaded, finite, masked to -inf like keys past N).
  auto keysOf = [&](int b) { return seqLens ? seqLens[b] : N; };
  auto tilesOf = [&](int b) { return (keysOf(b) + kBN - 1) / kBN; };  // K/V tiles per (b, h)
  const int mBlocks = (N + kBM - 1) / kBM;
  const int numWork = mBlocks * H * B;
  // Work tiles of this CTA: first, first + stride, ... (exactly one when not persistent).
  const int first = PERSISTENT ? int(blockIdx.x) : (int(blockIdx.z) * H + int(blockIdx.y)) * mBlocks + int(blockIdx.x);
  const int stride = PERSISTENT ? int(gridDim.x) : numWork;
  struct Work {
    int q0, h, b;
  };
  auto workAt = [&](int w) { return Work{(w % mBlocks) * kBM, (w / mBlocks) % H, w / (mBlocks * H)}; };

  if (tid == 0) {
    mbarInit(barQ, 1);
    mbarInit(emptyQ, 4 * CONSUMERS);  // one arrive per consumer warp
    for (int s = 0; s < STAGES; ++s) {
      mbarInit(fullK(s), 1);
      mbarInit(fullV(s), 1);
      mbarInit(empty(s), 4 * CONSUMERS);
    }
    // Make the initialised barriers visible to the TMA unit (async proxy).
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (wg == 0) {
    // Producer: gives registers to the consumers; one thread drives every load.
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
    if (tid == 0) {
      // `rows` rows from global row `row0` of column block `col` of batch `b` into the tile at
      // `dst`, one box per 64 rows and panel.
      auto load = [&](uint32_t dst, int rows, int col, int row0, int b, uint32_t bar) {
        for (int r = 0; r < rows; r += kBoxRows) {
          tmaLoad3d(dst + r * 128, &tmap0, bar, col, row0 + r, b);
          if constexpr (P::kW1 > 0) tmaLoad3d(dst + rows * 128 + r * P::kRowBytes1, &tmap1, bar, col + 64, row0 + r, b);
        }
      };
      int g = 0;  // K/V tiles loaded so far by this CTA: ring stage and phase
      int local = 0;
      for (int w = first; w < numWork; w += stride, ++local) {
        const Work wk = workAt(w);
        if (local > 0) mbarWait(emptyQ, (local - 1) & 1);
        mbarExpectTx(barQ, kTileQBytes);
        load(sQ, kBM, wk.h * D, wk.q0, wk.b, barQ);
        const int nTiles = tilesOf(wk.b);
        for (int j = 0; j < nTiles; ++j, ++g) {
          const int s = g % STAGES;
          const uint32_t phase = (g / STAGES) & 1;
          mbarWait(empty(s), phase ^ 1);
          mbarExpectTx(fullK(s), kTileKVBytes);
          load(sK(s), kBN, (H + wk.h) * D, j * kBN, wk.b, fullK(s));
          mbarExpectTx(fullV(s), kTileKVBytes);
          load(sV(s), kBN, (2 * H + wk.h) * D, j * kBN, wk.b, fullV(s));
        }
      }
    }
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(L::kConsumerRegs));
  const int cw = wg - 1;                 // consumer index
  const int ct = tid - 128 * wg;         // thread within the consumer warpgroup
  const int warp = ct >> 5, lane = ct & 31;
  // This consumer's 64 rows inside each panel of the Q tile.
  const TileAddr myQ{sQ + cw * 64 * 128, sQ + kBM * 128 + cw * 64 * P::kRowBytes1};
  const int g0 = lane >> 2, t = lane & 3;
  const int r0 = warp * 16 + g0, r1 = r0 + 8;

  OAcc<D> o;
  float s[64];
  uint32_t p[8][4];
#pragma unroll
  for (int i = 0; i < 64; ++i) s[i] = 0.f;
  int g = 0;  // K/V tiles consumed so far (the producer's counter, mirrored)
  int local = 0;
  for (int w = first; w < numWork; w += stride, ++local) {
    const Work wk = workAt(w);
#pragma unroll
    for (int i = 0; i < 32; ++i) o.o0[i] = 0.f;
#pragma unroll
    for (int i = 0; i < int(sizeof(o.o1) / sizeof(float)); ++i) o.o1[i] = 0.f;
    RowState st{{-INFINITY, -INFINITY}, {0.f, 0.f}};
    float alpha[2];
    // Q is free once this warp's last S GEMM of the work tile has completed.
    auto releaseQ = [&] {
      if (lane == 0) mbarArrive(emptyQ);
    };

    mbarWait(barQ, local & 1);
    const int nk = keysOf(wk.b), nTiles = tilesOf(wk.b);
    if constexpr (!OVERLAP) {
      for (int j = 0; j < nTiles; ++j, ++g) {
        const int stg = g % STAGES;
        const uint32_t phase = (g / STAGES) & 1;
        mbarWait(fullK(stg), phase);
        wgmmaFence();
        issueQK<D>(s, myQ, tile(sK(stg), kBN));
        wgmmaCommit();
        wgmmaWait<0>();
        fenceRegs(s);
        if (j == nTiles - 1) releaseQ();
        onlineSoftmax(s, st, scaleLog2, nk - j * kBN, lane, alpha);
        packP(s, p);
        scaleO(o, alpha);
        mbarWait(fullV(stg), phase);
        wgmmaFence();
        issuePV<D>(o, p, tile(sV(stg), kBN));
        wgmmaCommit();
        wgmmaWait<0>();
        fenceO(o);
        if (lane == 0) mbarArrive(empty(stg));
      }
    } else {
      // Tile 0: S_0 alone. (Not persistent, so g counts from 0 with the tile index.)
      mbarWait(fullK(0), 0);
      wgmmaFence();
      issueQK<D>(s, myQ, tile(sK(0), kBN));
      wgmmaCommit();
      wgmmaWait<0>();
      fenceRegs(s);
      if (nTiles == 1) releaseQ();
      onlineSoftmax(s, st, scaleLog2, nk, lane, alpha);
      packP(s, p);
      for (int j = 1; j < nTiles; ++j) {
        const int stg = j % STAGES, prev = (j - 1) % STAGES;
        const uint32_t phase = (j / STAGES) & 1, prevPhase = ((j - 1) / STAGES) & 1;
        mbarWait(fullK(stg), phase);
        mbarWait(fullV(prev), prevPhase);
        wgmmaFence();
        issueQK<D>(s, myQ, tile(sK(stg), kBN));
        wgmmaCommit();
        issuePV<D>(o, p, tile(sV(prev), kBN));
        wgmmaCommit();
        wgmmaWait<1>();  // S_j done; PV_{j-1} may still run
        fenceRegs(s);
        if (j == nTiles - 1) releaseQ();
        onlineSoftmax(s, st, scaleLog2, nk - j * kBN, lane, alpha);
        wgmmaWait<0>();  // PV_{j-1} done: O is ours again, P and stage j-1 are free
        fenceO(o);
        fenceRegs(p);
        if (lane == 0) mbarArrive(empty(prev));
        scaleO(o, alpha);
        packP(s, p);
      }
      const int last = (nTiles - 1) % STAGES;
      mbarWait(fullV(last), ((nTiles - 1) / STAGES) & 1);
      wgmmaFence();
      issuePV<D>(o, p, tile(sV(last), kBN));
      wgmmaCommit();
      wgmmaWait<0>();
      fenceO(o);
      if (lane == 0) mbarArrive(empty(last));
      g += nTiles;
    }

    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float l = st.l[r];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      inv[r] = 1.f / l;
    }
    const int qBase = wk.q0 + cw * 64;
    if constexpr (D == 64) {
      // Through this warpgroup's rows of the O staging buffer, XOR-swizzled by 16-byte chunk
      // (conflict-free both ways), then 16-byte stores of whole rows. Each warp only touches its
      // own 16 rows, so a warp barrier orders the two halves (and the previous work tile's reads).
      unsigned char* stage = smem + L::kO + cw * 64 * 128;
      __syncwarp();
#pragma unroll
      for (int jb = 0; jb < 8; ++jb) {
        *reinterpret_cast<uint32_t*>(stage + r0 * 128 + ((jb ^ (r0 & 7)) << 4) + 4 * t) =
            packBf16(o.o0[4 * jb + 0] * inv[0], o.o0[4 * jb + 1] * inv[0]);
        *reinterpret_cast<uint32_t*>(stage + r1 * 128 + ((jb ^ (r1 & 7)) << 4) + 4 * t) =
            packBf16(o.o0[4 * jb + 2] * inv[1], o.o0[4 * jb + 3] * inv[1]);
      }
      __syncwarp();
#pragma unroll
      for (int it = 0; it < 4; ++it) {
        const int i = it * 32 + lane;
        const int r = warp * 16 + (i >> 3), c = i & 7;
        const int qRow = qBase + r;
        if (qRow < N)
          *reinterpret_cast<uint4*>(out + (int64_t(wk.b) * N + qRow) * ldo + int64_t(wk.h) * D + c * 8) =
              *reinterpret_cast<const uint4*>(stage + r * 128 + ((c ^ (r & 7)) << 4));
      }
    } else {
      // Rows of 160 or 256 bytes: straight from registers, a quad writing 16 contiguous bytes.
      const int qa = qBase + r0, qb = qa + 8;
      __nv_bfloat16* outA = out + (int64_t(wk.b) * N + qa) * ldo + int64_t(wk.h) * D + 2 * t;
      __nv_bfloat16* outB = out + (int64_t(wk.b) * N + qb) * ldo + int64_t(wk.h) * D + 2 * t;
#pragma unroll
      for (int jb = 0; jb < 8; ++jb) {
        if (qa < N) *reinterpret_cast<uint32_t*>(outA + 8 * jb) = packBf16(o.o0[4 * jb] * inv[0], o.o0[4 * jb + 1] * inv[0]);
        if (qb < N) *reinterpret_cast<uint32_t*>(outB + 8 * jb) = packBf16(o.o0[4 * jb + 2] * inv[1], o.o0[4 * jb + 3] * inv[1]);
      }
#pragma unroll
      for (int jb = 0; jb < P::kW1 / 8; ++jb) {
        if (qa < N)
          *reinterpret_cast<uint32_t*>(outA + 64 + 8 * jb) = packBf16(o.o1[4 * jb] * inv[0], o.o1[4 * jb + 1] * inv[0]);
        if (qb < N)
          *reinterpret_cast<uint32_t*>(outB + 64 + 8 * jb) = packBf16(o.o1[4 * jb + 2] * inv[1], o.o1[4 * jb + 3] * inv[1]);
      }
      (void)smem;
    }
  }
#else
  using L = WgmmaSmem<D, STAGES, CONSUMERS>;
  (void)L::kQ;
  (void)L::kK0;
  (void)L::kConsumerRegs;
  (void)L::kO;
  (void)B;
  (void)Panels<D>::kRowBytes1;
  (void)tmap0;
  (void)tmap1;
  (void)out;
  (void)N;
  (void)seqLens;
  (void)H;
  (void)ldo;
  (void)scaleLog2;
#endif
}

// cuTensorMapEncodeTiled lives in the driver API; fetched through the runtime so the library
// needs no -lcuda.
PFN_cuTensorMapEncodeTiled_v12000 tensorMapEncoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    FS_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q));
    if (q != cudaDriverEntryPointSuccess || f == nullptr)
      throw Error("cuda_error", "the CUDA driver has no cuTensorMapEncodeTiled (needs a CUDA 12 driver)");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

// The packed qkv tensor as TMA sees it, with boxes of `boxCols` columns x 64 rows in the
// swizzle that matches the panel's row bytes.
CUtensorMap qkvTensorMap(const void* qkv, int B, int N, int H, int D, int64_t ldqkv, int boxCols) {
  CUtensorMap map;
  const cuuint64_t dims[3] = {cuuint64_t(3) * H * D, cuuint64_t(N), cuuint64_t(B)};
  const cuuint64_t strides[2] = {cuuint64_t(ldqkv) * 2, cuuint64_t(ldqkv) * 2 * N};  // bytes, dims 1 and 2
  const cuuint32_t box[3] = {cuuint32_t(boxCols), kBoxRows, 1};
  const cuuint32_t elementStrides[3] = {1, 1, 1};
  const CUtensorMapSwizzle swizzle = boxCols * 2 == 128 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_32B;
  const CUresult r = tensorMapEncoder()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(qkv), dims, strides,
                                        box, elementStrides, CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle,
                                        CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw Error("cuda_error", "cuTensorMapEncodeTiled failed (" + std::to_string(int(r)) +
                                  ") for the qkv tensor: pointer and row stride must be 16-byte aligned");
  return map;
}

int multiprocessorCount() {
  int dev = 0, sms = 0;
  FS_CUDA_CHECK(cudaGetDevice(&dev));
  FS_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  return sms;
}

template <int D, int STAGES, int CONSUMERS, bool OVERLAP, bool PERSISTENT = false>
void launchWgmma(const __nv_bfloat16* qkv, __nv_bfloat16* out, int B, int N, int H, int64_t ldqkv, int64_t ldo,
                 float scaleLog2, cudaStream_t stream, const int* seqLens) {
  using L = WgmmaSmem<D, STAGES, CONSUMERS>;
  auto kernel = flashFwdWgmmaKernel<D, STAGES, CONSUMERS, OVERLAP, PERSISTENT>;
  static const cudaError_t attr =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(L::kDynamicBytes));
  FS_CUDA_CHECK(attr);
  const CUtensorMap map0 = qkvTensorMap(qkv, B, N, H, D, ldqkv, 64);
  const CUtensorMap map1 = Panels<D>::kW1 > 0 ? qkvTensorMap(qkv, B, N, H, D, ldqkv, Panels<D>::kW1) : map0;
  const int mBlocks = (N + L::kBM - 1) / L::kBM;
  if (PERSISTENT && int64_t(mBlocks) * H * B > INT32_MAX)
    throw Error("bad_input", "flash attention: too many query tiles for the persistent kernel");
  static const int sms = multiprocessorCount();
  const dim3 grid = PERSISTENT ? dim3(unsigned(std::min<int64_t>(sms, int64_t(mBlocks) * H * B))) : dim3(mBlocks, H, B);
  kernel<<<grid, L::kThreads, L::kDynamicBytes, stream>>>(map0, map1, out, B, N, seqLens, H, ldo, scaleLog2);
  FS_CUDA_CHECK_LAUNCH("flashFwdWgmmaKernel");
}

}  // namespace

bool flashWgmmaAvailable() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return false;
  // Asked on every attention call: cache the answer per device (0 unknown, 1 no, 2 yes).
  static std::atomic<int> known[64];
  if (dev >= 0 && dev < 64 && known[dev].load(std::memory_order_relaxed) != 0) return known[dev] == 2;
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) return false;
  // sm_90a machine code runs on compute capability 9.0 only (not on later architectures).
  const bool yes = major == 9 && minor == 0;
  if (dev >= 0 && dev < 64) known[dev].store(yes ? 2 : 1, std::memory_order_relaxed);
  return yes;
}

void flashWgmma(const __nv_bfloat16* qkv, __nv_bfloat16* out, int B, int N, int H, int d, int64_t ldqkv, int64_t ldo,
                float scaleLog2, cudaStream_t stream, int stages, int consumers, bool overlap, bool persistent,
                const int* seqLens) {
  using Fn = void (*)(const __nv_bfloat16*, __nv_bfloat16*, int, int, int, int64_t, int64_t, float, cudaStream_t, const int*);
  Fn fn = nullptr;
  if (persistent) {
    if (d == 64 && stages == 2 && consumers == 3 && !overlap) fn = launchWgmma<64, 2, 3, false, true>;
    if (d == 80 && stages == 2 && consumers == 3 && !overlap) fn = launchWgmma<80, 2, 3, false, true>;
  } else if (d == 64) {
    if (stages == 2 && consumers == 2) fn = overlap ? launchWgmma<64, 2, 2, true> : launchWgmma<64, 2, 2, false>;
    if (stages == 3 && consumers == 2) fn = overlap ? launchWgmma<64, 3, 2, true> : launchWgmma<64, 3, 2, false>;
    if (stages == 2 && consumers == 3) fn = overlap ? launchWgmma<64, 2, 3, true> : launchWgmma<64, 2, 3, false>;
    if (stages == 3 && consumers == 3 && !overlap) fn = launchWgmma<64, 3, 3, false>;
  } else if (d == 80) {
    if (stages == 2 && consumers == 2 && !overlap) fn = launchWgmma<80, 2, 2, false>;
    if (stages == 2 && consumers == 3 && !overlap) fn = launchWgmma<80, 2, 3, false>;
  } else if (d == 128) {
    if (stages == 2 && consumers == 2 && !overlap) fn = launchWgmma<128, 2, 2, false>;
  }
  if (fn == nullptr)
    throw Error("bad_input", "wgmma flash attention: no build for d=" + std::to_string(d) + ", " +
                                 std::to_string(stages) + " stages, " + std::to_string(consumers) +
                                 " consumer warpgroups, overlap " + std::to_string(overlap) + ", persistent " +
                                 std::to_string(persistent));
  fn(qkv, out, B, N, H, ldqkv, ldo, scaleLog2, stream, seqLens);
}

}  // namespace cuda
}  // namespace flashslide
