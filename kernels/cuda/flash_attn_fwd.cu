// flashslide CUDA backend: flash attention forward (non-causal, inference), bf16 in/out.
//
// Algorithm (FlashAttention-2 forward, one pass, never materialising the N x N scores):
//   for each (batch b, head h, query tile of BM rows):
//     load Q tile once, keep its MMA fragments in registers for the whole loop
//     m = -inf, l = 0, O = 0                             (per query row, fp32, registers)
//     for each K/V tile j of BN keys (tile j+1 is loaded by cp.async while j is computed):
//       S   = Q K_j^T                                    mma.sync m16n8k16, bf16 -> fp32
//       (last tile only, when N % BN != 0: S[:, col >= N - j*BN] = -inf)
//       m'  = max(m, rowmax S)
//       P   = exp2(S * c - m' * c),  c = scale * log2(e)  one FFMA + one MUFU.EX2 per score
//       l   = l * exp2((m - m') * c) + rowsum P;  O = O * exp2((m - m') * c)
//       O  += P V_j                                      P re-used from the S accumulators
//                                                        as bf16 A fragments (no smem trip)
//     O /= l; store bf16 rows < N
//   Softmax statistics (m, l) and O stay fp32; only P is rounded to bf16 for the PV MMA,
//   as in FlashAttention-2/3.
//
// Tile shapes (template parameters, instantiated per head dim below):
//   D      head dim: 64, 80 or 128. Everything is in 16-wide k-steps, so 80 = 5 steps, no
//          padding to 96 (PyTorch/FA2 round 80 up to 96 and spend 20% more MMA work).
//   WARPS  warps per CTA; each warp owns 16*MT query rows and never talks to other warps
//          except through the shared K/V tiles.
//   MT     16-row MMA tiles per warp. MT = 2 makes each K/V fragment loaded from shared
//          memory feed two MMAs, halving shared-memory traffic per FLOP (the limit at d=64).
//   BN     keys per K/V tile.
//   CTA query tile BM = 16 * WARPS * MT (128, or 256 for d=64 at long N).
//   MINB   __launch_bounds__ minimum CTAs per SM (register cap); 1 everywhere now (3 spilled
//          and was slower, bench/NOTES.md issue 5).
//   FLAGS  kQSmem: Q fragments re-read from smem per k-step instead of held in registers;
//          kLazyRescale: skip O *= alpha when no row max of the warp moved (one vote per tile);
//          kSub2: K/V stages of 2*BN keys, computed as two BN tiles, one barrier per stage.
//
// Memory layout:
//   global qkv [B, N, 3, H, D] (row stride ldqkv), out [B, N, H, D] (row stride ldo): the
//     layouts of the fused qkv GEMM output and of the proj GEMM input, so no transposes.
//   shared sQ [BM][D+8], sK[2][BN][D+8], sV[2][BN][D+8] bf16, row-major, rows padded by 16
//     bytes. A padded row is an odd number of 16-byte chunks (9, 11, 17 for D = 64, 80, 128),
//     so the 8 row addresses of every ldmatrix phase fall in 8 different bank groups: no
//     bank conflicts, for every head dim, without a swizzle. (An XOR swizzle needs a power-
//     of-two chunk count per row and does not fit D = 80.)
//   K is read with ldmatrix (rows = keys, as the col-major B operand of S = Q K^T wants);
//   V with ldmatrix.trans (B operand of O = P V is V^T-major).
//   Out-of-range rows (query rows >= N, keys >= N) are zero-filled by cp.async's src-size
//   operand, so no garbage (possibly NaN) ever reaches the MMAs; masked scores are -inf, so
//   their P is exactly 0. Query rows >= N are computed (on zeros) but never stored.
//   The output tile is staged through sQ (each warp only touches its own rows) so global
//   stores are full 16-byte, row-contiguous writes.
#include <cuda_bf16.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "cuda_check.h"
#include "flash_attn.h"
#include "flash_attn_wgmma.h"

namespace flashslide {
namespace cuda {

namespace {

// ---------------------------------------------------------------------------------------
// PTX wrappers (sm_80+): cp.async, ldmatrix, mma.sync, ex2.
// ---------------------------------------------------------------------------------------
__device__ __forceinline__ uint32_t smemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte async copy global -> shared; when !valid nothing is read and the 16 bytes are
// zero-filled (src-size 0). src must still be a valid address expression, so callers pass a
// clamped one.
__device__ __forceinline__ void cpAsync16(uint32_t dst, const void* src, bool valid) {
  const int srcBytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(srcBytes));
}
__device__ __forceinline__ void cpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cpAsyncWaitAll() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

__device__ __forceinline__ void ldmatrixX4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrixX4Trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// c += a * b for one 16x8x16 tile: a = 4 regs (16x16 bf16, row), b = 2 regs (16x8, col).
__device__ __forceinline__ void mmaBf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 2^x on the MUFU unit (ex2.approx.ftz: ~2 ulp, exp2(-inf) = +0), independent of whether the
// file is built with --use_fast_math.
__device__ __forceinline__ float fastExp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ uint32_t packBf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (low 16 bits) = lo
  uint32_t u;
  memcpy(&u, &v, sizeof u);
  return u;
}

// ---------------------------------------------------------------------------------------
// The kernel.
// ---------------------------------------------------------------------------------------
// Variant flags (template parameter FLAGS, FlashVariant::flags).
constexpr int kQSmem = 1;        // Q fragments re-read from smem per k-step (frees MT*D/8 regs)
constexpr int kLazyRescale = 2;  // skip O *= alpha when no row max of the warp moved this tile
constexpr int kSub2 = 4;         // each K/V stage holds 2 compute tiles of BN keys: half the barriers
// Hopper-only variants: the wgmma + TMA kernel of flash_attn_wgmma.cu (sm_90a; listed only
// when the current device is compute capability 9.0).
constexpr int kWgmma = 8;
constexpr int kOverlap = 16;  // with kWgmma: softmax of tile j overlaps the PV GEMM of tile j-1
constexpr int kStages3 = 32;  // with kWgmma: 3-deep K/V ring instead of 2
constexpr int kPersistent = 64;  // with kWgmma: one CTA per SM looping over the query tiles

template <int D, int WARPS, int MT, int BN, int SUB = 1>
struct FlashTraits {
  static_assert(D % 16 == 0, "head dim must be a multiple of 16");
  static_assert(BN % 16 == 0, "key tile must be a multiple of 16");
  static constexpr int kThreads = WARPS * 32;
  static constexpr int kWarpRows = 16 * MT;
  static constexpr int BM = WARPS * kWarpRows;
  static constexpr int kStride = D + 8;  // smem row stride (elements): odd # of 16-B chunks
  static_assert((kStride / 8) % 2 == 1, "padded row must be an odd number of 16-byte chunks");
  static constexpr int kChunks = D / 8;  // 16-byte chunks per global row
  static constexpr int kTileQ = BM * kStride;
  static constexpr int kTileKV = SUB * BN * kStride;  // one K or V stage: SUB compute tiles
  static constexpr size_t kSmemBytes = sizeof(__nv_bfloat16) * (size_t(kTileQ) + 4 * size_t(kTileKV));
};

// Cooperative cp.async of ROWS rows x D columns; rows >= nValid are zero-filled.
template <int D, int ROWS, int THREADS, int STRIDE>
__device__ __forceinline__ void loadTile(__nv_bfloat16* s, const __nv_bfloat16* g, int64_t ld, int nValid, int tid) {
  constexpr int kChunks = D / 8, kTotal = ROWS * kChunks;
#pragma unroll
  for (int it = 0; it < (kTotal + THREADS - 1) / THREADS; ++it) {
    const int i = it * THREADS + tid;
    if (kTotal % THREADS != 0 && i >= kTotal) break;
    const int r = i / kChunks, c = i % kChunks;
    const bool valid = r < nValid;
    const __nv_bfloat16* src = g + (valid ? int64_t(r) * ld : 0) + c * 8;
    cpAsync16(smemAddr(s + r * STRIDE + c * 8), src, valid);
  }
}

template <int D, int WARPS, int MT, int BN, int MINB, int FLAGS>
__global__ void __launch_bounds__(WARPS * 32, MINB)
    flashFwdKernel(const __nv_bfloat16* __restrict__ qkv, __nv_bfloat16* __restrict__ out, int N,
                   const int* __restrict__ seqLens, int H, int64_t ldqkv, int64_t ldo, float scaleLog2) {
  constexpr bool QSMEM = (FLAGS & kQSmem) != 0, LAZY = (FLAGS & kLazyRescale) != 0;
  constexpr int SUB = (FLAGS & kSub2) ? 2 : 1;
  constexpr int BNL = SUB * BN;  // keys per loaded stage
  using T = FlashTraits<D, WARPS, MT, BN, SUB>;
  constexpr int kThreads = T::kThreads, BM = T::BM, S = T::kStride;
  constexpr int KT = D / 16;   // k-steps of S = Q K^T
  constexpr int NT = BN / 8;   // 8-key column tiles of S
  constexpr int DT = D / 8;    // 8-wide column tiles of O

  extern __shared__ __align__(16) unsigned char smemRaw[];
  __nv_bfloat16* sQ = reinterpret_cast<__nv_bfloat16*>(smemRaw);
  __nv_bfloat16* sKV = sQ + T::kTileQ;  // K0, V0, K1, V1
  auto sK = [&](int buf) { return sKV + (2 * buf) * T::kTileKV; };
  auto sV = [&](int buf) { return sKV + (2 * buf + 1) * T::kTileKV; };

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int q0 = blockIdx.x * BM, h = blockIdx.y, b = blockIdx.z;
  // Keys of this sequence: N, or fewer when tokens were dropped (rows Nk..N-1 are padding,
  // zero-filled by the loads below and masked like keys past N).
  const int Nk = seqLens ? seqLens[b] : N;
  const int64_t HD = int64_t(H) * D;
  const __nv_bfloat16* gQ = qkv + (int64_t(b) * N + q0) * ldqkv + int64_t(h) * D;
  const __nv_bfloat16* gK = qkv + int64_t(b) * N * ldqkv + HD + int64_t(h) * D;
  const __nv_bfloat16* gV = gK + HD;
  const int nTiles = (Nk + BNL - 1) / BNL;  // loaded stages

  // Prologue: Q and the first K/V tile in one cp.async group.
  loadTile<D, BM, kThreads, S>(sQ, gQ, ldqkv, N - q0, tid);
  loadTile<D, BNL, kThreads, S>(sK(0), gK, ldqkv, Nk, tid);
  loadTile<D, BNL, kThreads, S>(sV(0), gV, ldqkv, Nk, tid);
  cpAsyncCommit();
  cpAsyncWaitAll();
  __syncthreads();

  // Q fragments for this warp's rows, kept in registers for the whole key loop (QSMEM:
  // re-read from sQ at every k-step instead, which frees MT*D/8 registers for the larger
  // tiles; sQ is not overwritten before the epilogue).
  // ldmatrix.x4 on a 16x16 block: lanes 0-15 address rows 0-15 at column 0, lanes 16-31
  // rows 0-15 at column 8 -> regs = {rows 0-7 k0-7, rows 8-15 k0-7, rows 0-7 k8-15, rows 8-15 k8-15},
  // exactly the m16n8k16 A-fragment order.
  const int warpRow0 = warp * T::kWarpRows;
  const uint32_t qAddr0 = smemAddr(sQ + (warpRow0 + (lane & 15)) * S + (lane >> 4) * 8);
  constexpr int KTQ = QSMEM ? 1 : KT;
  uint32_t qf[MT][KTQ][4];
  if constexpr (!QSMEM) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int kk = 0; kk < KT; ++kk)
        ldmatrixX4(qf[mt][kk], qAddr0 + uint32_t(sizeof(__nv_bfloat16) * (mt * 16 * S + kk * 16)));
  }

  float o[MT][DT][4];
  float rowMax[MT][2], rowSum[MT][2];  // [.][0] = row lane/4, [.][1] = row lane/4 + 8
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) o[mt][dt][0] = o[mt][dt][1] = o[mt][dt][2] = o[mt][dt][3] = 0.f;
    rowMax[mt][0] = rowMax[mt][1] = -INFINITY;
    rowSum[mt][0] = rowSum[mt][1] = 0.f;
  }

  // Per-lane ldmatrix row/column offsets (see the fragment maps in the header comment of
  // each use). K: lanes 0-7 keys 0-7/dims 0-7, 8-15 keys 0-7/dims 8-15, 16-23 keys 8-15/dims
  // 0-7, 24-31 keys 8-15/dims 8-15 -> {b0,b1} of key tile 2p, {b0,b1} of key tile 2p+1.
  const int kRow = (lane & 7) + ((lane >> 4) << 3), kCol = ((lane >> 3) & 1) * 8;
  // V (trans): lanes 0-7 keys 0-7/dims 0-7, 8-15 keys 8-15/dims 0-7, 16-23 keys 0-7/dims 8-15,
  // 24-31 keys 8-15/dims 8-15 -> {b0,b1} of dim tile 2p, {b0,b1} of dim tile 2p+1.
  const int vRow = (lane & 7) + (((lane >> 3) & 1) << 3), vCol = (lane >> 4) * 8;
  const int colInTile = 2 * (lane & 3);  // column of accumulator elements 0/2 within an 8-tile

  for (int t = 0; t < nTiles; ++t) {
    const int buf = t & 1;
    // Prefetch tile t+1 into the other buffer; it was last read in iteration t-1, which
    // ended with __syncthreads(). An empty group on the last tile keeps the wait uniform.
    if (t + 1 < nTiles) {
      const int j1 = (t + 1) * BNL;
      loadTile<D, BNL, kThreads, S>(sK(buf ^ 1), gK + int64_t(j1) * ldqkv, ldqkv, Nk - j1, tid);
      loadTile<D, BNL, kThreads, S>(sV(buf ^ 1), gV + int64_t(j1) * ldqkv, ldqkv, Nk - j1, tid);
    }
    cpAsyncCommit();

#pragma unroll
    for (int sub = 0; sub < SUB; ++sub) {
    // Keys of this compute tile still < N; a fully out-of-range second half is skipped
    // (uniform across the CTA), so every computed tile has >= 1 valid key.
    const int valid = Nk - t * BNL - sub * BN;
    if (SUB > 1 && valid <= 0) break;

    // S = Q K^T
    float s[MT][NT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.f;
    const __nv_bfloat16* kTile = sK(buf) + sub * BN * S;
#pragma unroll
    for (int kk = 0; kk < KT; ++kk) {
      if constexpr (QSMEM) {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
          ldmatrixX4(qf[mt][0], qAddr0 + uint32_t(sizeof(__nv_bfloat16) * (mt * 16 * S + kk * 16)));
      }
#pragma unroll
      for (int np = 0; np < NT / 2; ++np) {
        uint32_t kb[4];
        ldmatrixX4(kb, smemAddr(kTile + (np * 16 + kRow) * S + kk * 16 + kCol));
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mmaBf16(s[mt][2 * np], qf[mt][QSMEM ? 0 : kk], kb[0], kb[1]);
          mmaBf16(s[mt][2 * np + 1], qf[mt][QSMEM ? 0 : kk], kb[2], kb[3]);
        }
      }
    }

    // Partial last tile: keys >= N get -inf. Only this one iteration pays for the compares.
    if (valid < BN) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            if (nt * 8 + colInTile + (e & 1) >= valid) s[mt][nt][e] = -INFINITY;
    }

    bool maxMoved = false;
    float alphas[MT][2];
    // Online softmax. Each row is spread over the 4 lanes of a quad (lane & 3), each holding
    // 2 columns per 8-tile; row max via two xor-shuffles. The row sum stays per-lane until
    // the end (one reduction instead of one per tile).
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float mx = rowMax[mt][r];
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * r], s[mt][nt][2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        // Every tile has >= 1 finite score per row (key 0 of the tile is always < N), so mx
        // is finite; on the first tile rowMax = -inf and alpha = exp2(-inf) = 0.
        const float alpha = fastExp2((rowMax[mt][r] - mx) * scaleLog2);
        maxMoved |= mx != rowMax[mt][r];
        alphas[mt][r] = alpha;
        rowMax[mt][r] = mx;
        const float mxScaled = mx * scaleLog2;
        float sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          const float p0 = fastExp2(fmaf(s[mt][nt][2 * r], scaleLog2, -mxScaled));
          const float p1 = fastExp2(fmaf(s[mt][nt][2 * r + 1], scaleLog2, -mxScaled));
          s[mt][nt][2 * r] = p0;
          s[mt][nt][2 * r + 1] = p1;
          sum += p0 + p1;
        }
        rowSum[mt][r] = rowSum[mt][r] * alpha + sum;
      }
    // O *= alpha (alpha = 1 exactly for rows whose max did not move). LAZY: skipped when no
    // row of the warp moved, which after the first few tiles is most tiles.
    if (!LAZY || __any_sync(0xffffffffu, maxMoved)) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int r = 0; r < 2; ++r)
#pragma unroll
          for (int dt = 0; dt < DT; ++dt) {
            o[mt][dt][2 * r] *= alphas[mt][r];
            o[mt][dt][2 * r + 1] *= alphas[mt][r];
          }
    }

    // O += P V. The S accumulators of key tiles 2k, 2k+1 are, element for element, the A
    // fragment of a 16x16 P block: {row g k0-7, row g+8 k0-7, row g k8-15, row g+8 k8-15}.
    const __nv_bfloat16* vTile = sV(buf) + sub * BN * S;
#pragma unroll
    for (int kt = 0; kt < BN / 16; ++kt) {
      uint32_t pa[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        pa[mt][0] = packBf16(s[mt][2 * kt][0], s[mt][2 * kt][1]);
        pa[mt][1] = packBf16(s[mt][2 * kt][2], s[mt][2 * kt][3]);
        pa[mt][2] = packBf16(s[mt][2 * kt + 1][0], s[mt][2 * kt + 1][1]);
        pa[mt][3] = packBf16(s[mt][2 * kt + 1][2], s[mt][2 * kt + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t vb[4];
        ldmatrixX4Trans(vb, smemAddr(vTile + (kt * 16 + vRow) * S + dp * 16 + vCol));
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mmaBf16(o[mt][2 * dp], pa[mt], vb[0], vb[1]);
          mmaBf16(o[mt][2 * dp + 1], pa[mt], vb[2], vb[3]);
        }
      }
    }

    }  // sub

    // Tile t+1 has landed and everyone is done with buffer `buf` before it is refilled.
    cpAsyncWaitAll();
    __syncthreads();
  }

  // Epilogue: finish the row sums, normalise, stage this warp's rows in sQ (only this warp
  // ever read them), then 16-byte coalesced stores of the rows < N.
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float l = rowSum[mt][r];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      rowSum[mt][r] = 1.f / l;  // l >= 1: the row max contributes exp2(0)
    }
  const int g = lane >> 2;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
      const int row = warpRow0 + mt * 16 + g, col = dt * 8 + colInTile;
      const uint32_t lo = packBf16(o[mt][dt][0] * rowSum[mt][0], o[mt][dt][1] * rowSum[mt][0]);
      const uint32_t hi = packBf16(o[mt][dt][2] * rowSum[mt][1], o[mt][dt][3] * rowSum[mt][1]);
      *reinterpret_cast<uint32_t*>(sQ + row * S + col) = lo;
      *reinterpret_cast<uint32_t*>(sQ + (row + 8) * S + col) = hi;
    }
  __syncwarp();
  constexpr int kChunks = T::kChunks, kTotal = T::kWarpRows * kChunks;
#pragma unroll
  for (int it = 0; it < (kTotal + 31) / 32; ++it) {
    const int i = it * 32 + lane;
    if (kTotal % 32 != 0 && i >= kTotal) break;
    const int r = i / kChunks, c = i % kChunks;
    const int qRow = q0 + warpRow0 + r;
    if (qRow < N) {
      const uint4 v = *reinterpret_cast<const uint4*>(sQ + (warpRow0 + r) * S + c * 8);
      *reinterpret_cast<uint4*>(out + (int64_t(b) * N + qRow) * ldo + int64_t(h) * D + c * 8) = v;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Variants and launch.
// ---------------------------------------------------------------------------------------
using LaunchFn = void (*)(const __nv_bfloat16*, __nv_bfloat16*, int, int, const int*, int, int64_t, int64_t, float,
                          cudaStream_t);

template <int D, int WARPS, int MT, int BN, int MINB = 1, int FLAGS = 0>
void launchFlash(const __nv_bfloat16* qkv, __nv_bfloat16* out, int B, int N, const int* seqLens, int H,
                 int64_t ldqkv, int64_t ldo, float scaleLog2, cudaStream_t stream) {
  using T = FlashTraits<D, WARPS, MT, BN, (FLAGS & kSub2) ? 2 : 1>;
  auto kernel = flashFwdKernel<D, WARPS, MT, BN, MINB, FLAGS>;
  // Above 48 KB a kernel must opt in to its dynamic shared memory. Once per instantiation
  // per process (the attribute is per device function, not per launch).
  static const cudaError_t attr =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(T::kSmemBytes));
  FS_CUDA_CHECK(attr);
  // m-blocks fastest: CTAs that share a (b, h) run together and share K/V through L2.
  const dim3 grid((N + T::BM - 1) / T::BM, H, B);
  kernel<<<grid, T::kThreads, T::kSmemBytes, stream>>>(qkv, out, N, seqLens, H, ldqkv, ldo, scaleLog2);
  FS_CUDA_CHECK_LAUNCH("flashFwdKernel");
}

// WARPS = consumer warps: 4 per warpgroup of 64 query rows.
template <int D, int WARPS, int FLAGS>
void launchWgmma(const __nv_bfloat16* qkv, __nv_bfloat16* out, int B, int N, const int* seqLens, int H, int64_t ldqkv,
                 int64_t ldo, float scaleLog2, cudaStream_t stream) {
  flashWgmma(qkv, out, B, N, H, D, ldqkv, ldo, scaleLog2, stream, (FLAGS & kStages3) ? 3 : 2, WARPS / 4,
             (FLAGS & kOverlap) != 0, (FLAGS & kPersistent) != 0, seqLens);
}

struct VariantEntry {
  FlashVariant v;
  LaunchFn fn;
};

// Registers per thread (fp32 accumulators): O = MT*D/2, S = MT*BN/2, Q fragments = MT*D/8
// (ptxas hoists ldmatrix results too: the m2 variants sit at 224-255). MT = 2 with D = 128
// fits only with Q in smem (kQSmem; ~60 bytes of spill remain) and is still the fastest d=128.
const std::vector<VariantEntry>& registry() {
  static const std::vector<VariantEntry> r = {
      {{64, 4, 2, 64, 1, 0}, launchFlash<64, 4, 2, 64, 1, 0>},
      {{64, 4, 2, 64, 1, kQSmem}, launchFlash<64, 4, 2, 64, 1, kQSmem>},
      {{64, 4, 2, 64, 1, kSub2}, launchFlash<64, 4, 2, 64, 1, kSub2>},
      {{64, 4, 2, 64, 1, kLazyRescale | kSub2}, launchFlash<64, 4, 2, 64, 1, kLazyRescale | kSub2>},
      {{64, 8, 2, 64, 1, 0}, launchFlash<64, 8, 2, 64, 1, 0>},
      {{64, 8, 2, 64, 1, kSub2}, launchFlash<64, 8, 2, 64, 1, kSub2>},
      {{64, 8, 2, 64, 1, kLazyRescale | kSub2}, launchFlash<64, 8, 2, 64, 1, kLazyRescale | kSub2>},
      // wgmma: 2 or 3 consumer warpgroups (8 or 12 warps) x 64 rows = BM 128 or 192, 128-key stages.
      {{64, 8, 1, 128, 1, kWgmma}, launchWgmma<64, 8, kWgmma>},
      {{64, 8, 1, 128, 1, kWgmma | kOverlap}, launchWgmma<64, 8, kWgmma | kOverlap>},
      {{64, 8, 1, 128, 1, kWgmma | kStages3}, launchWgmma<64, 8, kWgmma | kStages3>},
      {{64, 8, 1, 128, 1, kWgmma | kOverlap | kStages3}, launchWgmma<64, 8, kWgmma | kOverlap | kStages3>},
      {{64, 12, 1, 128, 1, kWgmma}, launchWgmma<64, 12, kWgmma>},
      {{64, 12, 1, 128, 1, kWgmma | kOverlap}, launchWgmma<64, 12, kWgmma | kOverlap>},
      {{64, 12, 1, 128, 1, kWgmma | kStages3}, launchWgmma<64, 12, kWgmma | kStages3>},
      {{64, 12, 1, 128, 1, kWgmma | kPersistent}, launchWgmma<64, 12, kWgmma | kPersistent>},
      {{80, 8, 1, 128, 1, kWgmma}, launchWgmma<80, 8, kWgmma>},
      {{80, 12, 1, 128, 1, kWgmma}, launchWgmma<80, 12, kWgmma>},
      {{80, 12, 1, 128, 1, kWgmma | kPersistent}, launchWgmma<80, 12, kWgmma | kPersistent>},
      {{80, 4, 2, 64, 1, kQSmem}, launchFlash<80, 4, 2, 64, 1, kQSmem>},
      {{80, 4, 2, 64, 1, kQSmem | kLazyRescale}, launchFlash<80, 4, 2, 64, 1, kQSmem | kLazyRescale>},
      {{80, 4, 2, 64, 1, kQSmem | kSub2}, launchFlash<80, 4, 2, 64, 1, kQSmem | kSub2>},
      {{80, 4, 2, 64, 1, 0}, launchFlash<80, 4, 2, 64, 1, 0>},
      {{80, 8, 1, 64, 1, 0}, launchFlash<80, 8, 1, 64, 1, 0>},
      {{128, 8, 1, 128, 1, kWgmma}, launchWgmma<128, 8, kWgmma>},
      {{128, 4, 2, 64, 1, kQSmem}, launchFlash<128, 4, 2, 64, 1, kQSmem>},
      {{128, 4, 2, 64, 1, kQSmem | kLazyRescale}, launchFlash<128, 4, 2, 64, 1, kQSmem | kLazyRescale>},
      {{128, 8, 1, 64, 1, 0}, launchFlash<128, 8, 1, 64, 1, 0>},
      {{128, 8, 1, 64, 1, kSub2}, launchFlash<128, 8, 1, 64, 1, kSub2>},
      {{128, 4, 1, 64, 1, 0}, launchFlash<128, 4, 1, 64, 1, 0>},
  };
  return r;
}

}  // namespace

std::string FlashVariant::name() const {
  return "d" + std::to_string(headDim) + "_w" + std::to_string(warps) + "_m" + std::to_string(mTiles) + "_n" +
         std::to_string(blockN) + (minBlocks > 1 ? "_b" + std::to_string(minBlocks) : "") +
         ((flags & kQSmem) ? "_qs" : "") + ((flags & kLazyRescale) ? "_lr" : "") + ((flags & kSub2) ? "_s2" : "") +
         ((flags & kWgmma) ? "_wgmma" : "") + ((flags & kOverlap) ? "_ov" : "") + ((flags & kStages3) ? "_st3" : "") + ((flags & kPersistent) ? "_p" : "");
}

// Default tile per head dim and length. Off Hopper (mma.sync), from the H100 measurements in bench/NOTES.md
// ("CUDA tuning (issue 5)"; run-to-run spread there is ~+-4%). d=64: 256-row CTAs (w8_m2,
// one per SM) halve the K/V traffic per FLOP and, with 128-key stages (s2: one barrier per
// two 64-key tiles), win at long N (323-327 vs 304-309 TFLOP/s); at N ~ 4k the padding of the
// last 256-row block costs more, and the 128-row CTA stays best. d=80: Q re-read from smem
// (no spill) + lazy rescale; d=128: 32 rows per warp with Q in smem (FA2's 128x64 tile).
std::string flashDefaultVariantName(int d, int B, int N, int H) {
  (void)B;
  (void)H;
  // Hopper: the wgmma + TMA kernel with 3 consumer warpgroups (192-row CTA): 474-502 TFLOP/s
  // at N = 4k-65k against 396-436 with 2 and 300-329 for the best mma.sync tile (bench/NOTES.md,
  // "Hopper attention"); the intra-warpgroup overlap variants were slower. Short sequences
  // (224 px: N = 201) keep the 128-row CTA, which pads less: ViT-L attention at 224 px took
  // 9.2 ms with it against 12.7 ms with the 192-row one.
  // d=80 (Virchow) runs the same kernel with a 16-column second panel: 516 TFLOP/s at N = 5330
  // (389 with 2 consumer warpgroups); d=128 fits 2 consumers only (64 O registers): 583.
  const std::string prefix = "d" + std::to_string(d);
  if (flashWgmmaAvailable() && d != 128) return prefix + (N < 512 ? "_w8_m1_n128_wgmma" : "_w12_m1_n128_wgmma");
  if (flashWgmmaAvailable()) return "d128_w8_m1_n128_wgmma";
  if (d == 64) return N >= 8192 ? "d64_w8_m2_n64_s2" : "d64_w4_m2_n64";
  if (d == 80) return "d80_w4_m2_n64_qs_lr";
  return "d128_w4_m2_n64_qs_lr";
}

bool flashSupportedHeadDim(int d) { return d == 64 || d == 80 || d == 128; }

namespace {
// The registry entries usable on the current device, for head dim d, in registry order.
std::vector<const VariantEntry*> usableVariants(int d) {
  const bool hopper = flashWgmmaAvailable();
  std::vector<const VariantEntry*> mine;
  for (const auto& e : registry())
    if (e.v.headDim == d && (hopper || !(e.v.flags & kWgmma))) mine.push_back(&e);
  return mine;
}
}  // namespace

std::vector<FlashVariant> flashVariants(int d) {
  std::vector<FlashVariant> v;
  for (const VariantEntry* e : usableVariants(d)) v.push_back(e->v);
  return v;
}

void flashAttentionForward(const void* qkv, void* out, int B, int N, int H, int d, int64_t ldqkv, int64_t ldo,
                           float scale, cudaStream_t stream, int variant, const int* seqLens) {
  if (!flashSupportedHeadDim(d))
    throw Error("unsupported_arch", "CUDA flash attention supports head dims 64, 80 and 128, not " +
                                        std::to_string(d));
  if (B <= 0 || N <= 0 || H <= 0) throw Error("bad_input", "flash attention: empty problem");
  if (B > 65535 || H > 65535) throw Error("bad_input", "flash attention: batch and heads must be <= 65535");
  if (ldqkv % 8 || ldo % 8 || (reinterpret_cast<uintptr_t>(qkv) | reinterpret_cast<uintptr_t>(out)) % 16)
    throw Error("bad_input", "flash attention: rows must be 16-byte aligned");
  const std::vector<const VariantEntry*> mine = usableVariants(d);
  if (variant < 0) {
    variant = 0;
    // Benchmark / experiment override, e.g. FLASHSLIDE_ATTN_VARIANT=d64_w4_m2_n64_qs.
    const char* env = std::getenv("FLASHSLIDE_ATTN_VARIANT");
    const std::string want = env && *env ? std::string(env) : flashDefaultVariantName(d, B, N, H);
    for (size_t i = 0; i < mine.size(); ++i)
      if (mine[i]->v.name() == want) variant = static_cast<int>(i);
  }
  if (variant >= static_cast<int>(mine.size()))
    throw Error("bad_input", "flash attention: no variant " + std::to_string(variant) + " for d=" + std::to_string(d));
  const float scaleLog2 = scale * 1.4426950408889634f;  // exp(x) = exp2(x * log2(e))
  mine[variant]->fn(static_cast<const __nv_bfloat16*>(qkv), static_cast<__nv_bfloat16*>(out), B, N, seqLens, H, ldqkv,
                    ldo, scaleLog2, stream);
}

}  // namespace cuda
}  // namespace flashslide
