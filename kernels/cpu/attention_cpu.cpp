// flashslide CPU backend: flash-style attention (FlashAttention-2 schedule on a CPU).
//
// Algorithm, per (batch b, head h, query block of BQ rows) -- one OpenMP task each:
//   O = 0, m = -inf, l = 0                           (per query row)
//   for each key block of BK keys:
//     S = Qs K^T                [BQ x BK]            Qs = q * scale * log2(e)
//     m' = max(m, rowmax S); P = exp2(S - m'); c = exp2(m - m')
//     l = l*c + rowsum P;  O = O*c + P V
//   out = O / l
// Folding scale*log2(e) into Q makes every score exponent one subtract + exp2 and keeps
// the running max in the same (log2) units. Nothing of size T x T exists: per thread
// the S tile is BQ*BK floats and O is BQ*d.
//
// Data preparation: Q, K, V are repacked once per call into per-(b,h) panels
//   Q  [Tq, dp]   K^T [dp, Tk]   V [Tk, dp]      (dp = d rounded up to 16,
//                                                 Tq = T rounded to 8, Tk = T rounded to 32)
// zero-padded, so the micro-kernels always run on full register tiles and need no tail
// code; padded keys are excluded from the softmax (score -inf, P forced to 0) and padded
// query rows are simply not written back. K is stored transposed so that S = Q K^T is
// a broadcast-FMA over contiguous key columns instead of short horizontal dot products.
// This costs ~3*T*D floats of workspace, still O(T*D).
//
// Tiles: BQ = 64 query rows per task; BK keys per inner step with the K^T and V tiles of
// one key block (2*BK*dp*4 bytes, ~256 KiB) sized to stay in a per-core L2 while the
// BQ/MR row groups of the task stream over them. The S/P tile (BQ*BK floats) and O
// (BQ*dp) are per-thread scratch.
//
// Micro-kernels: MR query rows x 16*NV columns held in registers (GCC vector extension
// types, so one source lowers to zmm/ymm/xmm). The same template is compiled three
// times with target attributes -- x86-64-v4 (8x32 tiles, 32 zmm registers), x86-64-v3
// (4x16, 16 ymm) and the build's baseline -- and picked at runtime with
// __builtin_cpu_supports, so the library is built for generic x86-64-v2 yet uses
// AVX2/AVX-512 where present. The softmax exponent is a vectorised polynomial exp2
// (libm's expf does not vectorise here and would dominate at head_dim 64).
#include "attention_cpu.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace flashslide {

namespace {

#define FS_INLINE inline __attribute__((always_inline))

constexpr int kRowPad = 8;   // query rows padded to the largest micro-kernel height
constexpr int kColPad = 32;  // keys padded to the widest micro-kernel (2 x 16 floats)

inline int roundUp(int x, int m) { return (x + m - 1) / m * m; }

// 16 floats. GCC lowers it to one zmm, two ymm or four xmm depending on the ISA of the
// function it is inlined into, so one source serves every dispatch target.
typedef float v16f __attribute__((vector_size(64)));

typedef int32_t v16i __attribute__((vector_size(64)));

// 2^x for 16 lanes, x <= 0 (scores minus the running max). Adding 1.5*2^23 rounds to
// the nearest integer n, so the polynomial argument f = x - n lies in [-0.5, 0.5],
// where a degree-6 Taylor series of e^(f ln2) is accurate to ~1.2e-7 (about 1 ulp).
// 2^n is assembled in the exponent field. Inputs below -126 are clamped: the result
// (~1e-38) is negligible against a row sum >= 1, and -inf (masked keys) stays finite.
FS_INLINE void exp2Neg(v16f& x) {  // in place: by-value vectors would change the psABI per ISA
  const v16f lo = v16f{} - 126.0f;
  x = x < lo ? lo : x;
  const v16f magic = v16f{} + 12582912.0f;
  const v16f n = (x + magic) - magic;
  const v16f f = x - n;
  v16f p = v16f{} + 1.5403530393381609e-04f;
  p = p * f + 1.3333558146428443e-03f;
  p = p * f + 9.6181291076284772e-03f;
  p = p * f + 5.5504108664821580e-02f;
  p = p * f + 2.4022650695910071e-01f;
  p = p * f + 6.9314718055994531e-01f;
  p = p * f + 1.0f;
  const v16i e = (__builtin_convertvector(n, v16i) + 127) << 23;
  x = p * (v16f)e;  // GCC vector cast = bit reinterpretation
}

FS_INLINE float hmax(const v16f& v) {
  float m = v[0];
  for (int i = 1; i < 16; ++i) m = std::max(m, v[i]);
  return m;
}
FS_INLINE float hsum(const v16f& v) {
  float s = 0.0f;
  for (int i = 0; i < 16; ++i) s += v[i];
  return s;
}

// s[MR][16*NV] = q[MR][0:dp] . kt[0:dp][16*NV]   (register-blocked outer products)
template <int MR, int NV>
FS_INLINE void microQK(const float* __restrict q, int dp, const float* __restrict kt, size_t ldk,
                       float* __restrict s, int lds) {
  v16f acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = v16f{};
  for (int c = 0; c < dp; ++c) {
    v16f kv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) std::memcpy(&kv[v], kt + c * ldk + 16 * v, sizeof(v16f));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const float qs = q[r * dp + c];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] += qs * kv[v];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) std::memcpy(s + r * lds + 16 * v, &acc[r][v], sizeof(v16f));
}

// o[MR][16*NV] += p[MR][0:nk] . v[0:nk][16*NV]
template <int MR, int NV>
FS_INLINE void microPV(const float* __restrict p, int ldp, const float* __restrict v, int ldv,
                       int nk, float* __restrict o, int ldo) {
  v16f acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int u = 0; u < NV; ++u) std::memcpy(&acc[r][u], o + r * ldo + 16 * u, sizeof(v16f));
  for (int k = 0; k < nk; ++k) {
    v16f vv[NV];
#pragma GCC unroll 2
    for (int u = 0; u < NV; ++u) std::memcpy(&vv[u], v + static_cast<size_t>(k) * ldv + 16 * u, sizeof(v16f));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const float ps = p[r * ldp + k];
#pragma GCC unroll 2
      for (int u = 0; u < NV; ++u) acc[r][u] += ps * vv[u];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int u = 0; u < NV; ++u) std::memcpy(o + r * ldo + 16 * u, &acc[r][u], sizeof(v16f));
}

struct Panels {
  int T, d, dp, Tq, Tk;
  size_t qOff, kOff, vOff, stride;  // offsets inside one (b,h) slice, slice stride
};

Panels makePanels(int T, int d) {
  Panels p;
  p.T = T;
  p.d = d;
  p.dp = roundUp(d, 16);
  p.Tq = roundUp(T, kRowPad);
  p.Tk = roundUp(T, kColPad);
  p.qOff = 0;
  p.kOff = static_cast<size_t>(p.Tq) * p.dp;
  p.vOff = p.kOff + static_cast<size_t>(p.dp) * p.Tk;
  p.stride = p.vOff + static_cast<size_t>(p.Tk) * p.dp;
  return p;
}

struct TileArgs {
  const float* slice;  // packed (b,h) panels
  const Panels* pn;
  int q0, nq, BK;
  float *S, *O, *m, *l;  // thread scratch: [BQ*BK], [BQ*dp], [BQ], [BQ]
  float* out;            // &out[b, q0 = 0, h, 0]
  size_t outStride;
};

// One (b, h, query block) task. MR x (16*NV) is the register tile of both GEMM-like
// steps; the ISA-specific wrappers below pick it for their register file.
template <int MR, int NV>
FS_INLINE void flashTile(const TileArgs& A) {
  const Panels& pn = *A.pn;
  const int dp = pn.dp, BK = A.BK, nq = A.nq;
  const int nqPad = roundUp(nq, MR);
  constexpr int NC = 16 * NV;
  const float* Q = A.slice + pn.qOff + static_cast<size_t>(A.q0) * dp;
  const float* Kt = A.slice + pn.kOff;
  const float* V = A.slice + pn.vOff;
  float* __restrict S = A.S;
  float* __restrict O = A.O;
  float* __restrict m = A.m;
  float* __restrict l = A.l;
  std::memset(O, 0, sizeof(float) * static_cast<size_t>(nqPad) * dp);
  for (int i = 0; i < nqPad; ++i) {
    m[i] = -std::numeric_limits<float>::infinity();
    l[i] = 0.0f;
  }
  for (int k0 = 0; k0 < pn.T; k0 += BK) {
    const int nk = std::min(BK, pn.T - k0);
    const int nkPad = roundUp(nk, NC);  // <= Tk - k0 since Tk is a multiple of kColPad
    for (int i = 0; i < nqPad; i += MR)
      for (int j = 0; j < nkPad; j += NC)
        microQK<MR, NV>(Q + static_cast<size_t>(i) * dp, dp, Kt + k0 + j, static_cast<size_t>(pn.Tk),
                        S + static_cast<size_t>(i) * BK + j, BK);
    for (int i = 0; i < nq; ++i) {
      float* row = S + static_cast<size_t>(i) * BK;
      // Padded keys: -inf so they neither win the max nor (after exp) carry weight.
      for (int j = nk; j < nkPad; ++j) row[j] = -std::numeric_limits<float>::infinity();
      v16f vmax = v16f{} - std::numeric_limits<float>::infinity();
      for (int j = 0; j < nkPad; j += 16) {
        v16f x;
        std::memcpy(&x, row + j, sizeof x);
        vmax = x > vmax ? x : vmax;
      }
      const float mNew = std::max(m[i], hmax(vmax));
      const v16f vm = v16f{} + mNew;
      v16f vsum = v16f{};
      for (int j = 0; j < nkPad; j += 16) {
        v16f x;
        std::memcpy(&x, row + j, sizeof x);
        x -= vm;
        exp2Neg(x);
        std::memcpy(row + j, &x, sizeof x);
        vsum += x;
      }
      for (int j = nk; j < nkPad; ++j) row[j] = 0.0f;  // drop the clamped 2^-126 of padding
      const float sum = hsum(vsum) - (nkPad - nk) * 0x1p-126f;
      const float corr = std::exp2(m[i] - mNew);       // exactly 0 on the first block
      l[i] = l[i] * corr + sum;
      m[i] = mNew;
      if (corr != 1.0f) {
        float* o = O + static_cast<size_t>(i) * dp;
        for (int c = 0; c < dp; ++c) o[c] *= corr;
      }
    }
    // Padded query rows (nq..nqPad) have all-zero Q, hence S = 0; zero P so they
    // cannot pick up V rows (their output is discarded, but keep them finite).
    for (int i = nq; i < nqPad; ++i) std::memset(S + static_cast<size_t>(i) * BK, 0, sizeof(float) * nkPad);
    for (int i = 0; i < nqPad; i += MR) {
      int c = 0;
      for (; c + NC <= dp; c += NC)
        microPV<MR, NV>(S + static_cast<size_t>(i) * BK, BK, V + static_cast<size_t>(k0) * dp + c, dp, nkPad,
                        O + static_cast<size_t>(i) * dp + c, dp);
      for (; c < dp; c += 16)  // head dims like 80 = 2*32 + 16
        microPV<MR, 1>(S + static_cast<size_t>(i) * BK, BK, V + static_cast<size_t>(k0) * dp + c, dp, nkPad,
                       O + static_cast<size_t>(i) * dp + c, dp);
    }
  }
  for (int i = 0; i < nq; ++i) {
    const float inv = 1.0f / l[i];
    const float* o = O + static_cast<size_t>(i) * dp;
    float* dst = A.out + static_cast<size_t>(A.q0 + i) * A.outStride;
    for (int c = 0; c < pn.d; ++c) dst[c] = o[c] * inv;
  }
}

// ISA variants. AVX-512 has 32 vector registers: 8x32 tiles (16 accumulators). AVX2 has
// 16: 4x16 tiles (8 ymm accumulators). The baseline keeps the AVX2 shape (it spills on
// SSE, but only machines without AVX2 run it).
using TileFn = void (*)(const TileArgs&);
void flashTileBase(const TileArgs& a) { flashTile<4, 1>(a); }
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FS_X86_DISPATCH 1
__attribute__((target("arch=x86-64-v4"))) void flashTileV4(const TileArgs& a) { flashTile<8, 2>(a); }
__attribute__((target("arch=x86-64-v3"))) void flashTileV3(const TileArgs& a) { flashTile<4, 1>(a); }
#endif

AttentionIsa bestIsa() {
#ifdef FS_X86_DISPATCH
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return AttentionIsa::Avx512;
  if (__builtin_cpu_supports("x86-64-v3")) return AttentionIsa::Avx2;
#endif
  return AttentionIsa::Baseline;
}

TileFn tileFn(AttentionIsa isa) {
  switch (isa) {
#ifdef FS_X86_DISPATCH
    case AttentionIsa::Avx512: return flashTileV4;
    case AttentionIsa::Avx2: return flashTileV3;
#endif
    default: return flashTileBase;
  }
}

}  // namespace

bool attentionIsaSupported(AttentionIsa isa) {
  const AttentionIsa best = bestIsa();
  switch (isa) {
    case AttentionIsa::Auto:
    case AttentionIsa::Baseline: return true;
    case AttentionIsa::Avx2: return best == AttentionIsa::Avx2 || best == AttentionIsa::Avx512;
    case AttentionIsa::Avx512: return best == AttentionIsa::Avx512;
  }
  return false;
}

const char* attentionIsaName(AttentionIsa isa) {
  switch (isa) {
    case AttentionIsa::Auto: return attentionIsaName(bestIsa());
    case AttentionIsa::Baseline: return "baseline";
    case AttentionIsa::Avx2: return "avx2 (x86-64-v3)";
    case AttentionIsa::Avx512: return "avx512 (x86-64-v4)";
  }
  return "?";
}

AttentionTiles attentionTiles(int headDim) {
  AttentionTiles t;
  t.blockQ = 64;
  // 2 * BK * dp * 4 bytes ~ 256 KiB for the K^T + V tiles of one key block.
  const int dp = roundUp(headDim, 16);
  t.blockK = std::max(64, std::min(512, (32768 / dp) / kColPad * kColPad));
  return t;
}

void attention_flash(const float* qkv, int B, int T, int H, int d, float scale, float* out,
                     AttentionWorkspace& ws, AttentionIsa isa) {
  if (!attentionIsaSupported(isa))
    throw std::invalid_argument(std::string("attention_flash: ") + attentionIsaName(isa) +
                                " is not supported by this CPU");
  if (B <= 0 || T <= 0 || H <= 0 || d <= 0) return;
  const Panels pn = makePanels(T, d);
  const int D = H * d;
  const size_t rowIn = static_cast<size_t>(3) * D;
  const size_t nSlices = static_cast<size_t>(B) * H;
  ws.packed.resize(nSlices * pn.stride);
  float* packed = ws.packed.data();
  const float qScale = scale * 1.4426950408889634f;  // log2(e): scores live in log2 units

  // Pack Q (scaled), K^T, V per (b, h). Zero the slice first: the padding must be 0.
#pragma omp parallel for schedule(static)
  for (size_t s = 0; s < nSlices; ++s) {
    const int b = static_cast<int>(s / H), h = static_cast<int>(s % H);
    float* slice = packed + s * pn.stride;
    std::memset(slice, 0, sizeof(float) * pn.stride);
    float* Qp = slice + pn.qOff;
    float* Kt = slice + pn.kOff;
    float* Vp = slice + pn.vOff;
    for (int t = 0; t < T; ++t) {
      const float* row = qkv + (static_cast<size_t>(b) * T + t) * rowIn;
      const float* q = row + static_cast<size_t>(h) * d;
      const float* k = row + D + static_cast<size_t>(h) * d;
      const float* v = row + 2 * D + static_cast<size_t>(h) * d;
      for (int c = 0; c < d; ++c) {
        Qp[static_cast<size_t>(t) * pn.dp + c] = q[c] * qScale;
        Kt[static_cast<size_t>(c) * pn.Tk + t] = k[c];
        Vp[static_cast<size_t>(t) * pn.dp + c] = v[c];
      }
    }
  }

  const AttentionTiles tiles = attentionTiles(d);
  const int BQ = tiles.blockQ, BK = tiles.blockK;
  const int nQB = (T + BQ - 1) / BQ;
  const long nTasks = static_cast<long>(nSlices) * nQB;
  const TileFn tile = tileFn(isa == AttentionIsa::Auto ? bestIsa() : isa);
#pragma omp parallel
  {
    std::vector<float> S(static_cast<size_t>(BQ) * BK), O(static_cast<size_t>(BQ) * pn.dp), m(BQ), l(BQ);
#pragma omp for schedule(dynamic, 1)
    for (long task = 0; task < nTasks; ++task) {
      const size_t s = static_cast<size_t>(task / nQB);
      const int qb = static_cast<int>(task % nQB);
      const int b = static_cast<int>(s / H), h = static_cast<int>(s % H);
      const int q0 = qb * BQ;
      const int nq = std::min(BQ, T - q0);
      TileArgs args{packed + s * pn.stride, &pn, q0, nq, BK, S.data(), O.data(), m.data(), l.data(),
                    out + static_cast<size_t>(b) * T * D + static_cast<size_t>(h) * d,
                    static_cast<size_t>(D)};
      tile(args);
    }
  }
}

void attention_reference(const float* qkv, int B, int T, int H, int d, float scale, float* out) {
  const int D = H * d;
  const size_t rowIn = static_cast<size_t>(3) * D;
#pragma omp parallel
  {
    std::vector<double> p(T), acc(d);
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < H; ++h)
        for (int i = 0; i < T; ++i) {
          const float* q = qkv + (static_cast<size_t>(b) * T + i) * rowIn + static_cast<size_t>(h) * d;
          double mx = -std::numeric_limits<double>::infinity();
          for (int j = 0; j < T; ++j) {
            const float* k = qkv + (static_cast<size_t>(b) * T + j) * rowIn + D + static_cast<size_t>(h) * d;
            double s = 0;
            for (int c = 0; c < d; ++c) s += static_cast<double>(q[c]) * k[c];
            p[j] = s * scale;
            mx = std::max(mx, p[j]);
          }
          double sum = 0;
          for (int j = 0; j < T; ++j) sum += (p[j] = std::exp(p[j] - mx));
          std::fill(acc.begin(), acc.end(), 0.0);
          for (int j = 0; j < T; ++j) {
            const float* v = qkv + (static_cast<size_t>(b) * T + j) * rowIn + 2 * D + static_cast<size_t>(h) * d;
            for (int c = 0; c < d; ++c) acc[c] += p[j] * v[c];
          }
          float* o = out + (static_cast<size_t>(b) * T + i) * D + static_cast<size_t>(h) * d;
          for (int c = 0; c < d; ++c) o[c] = static_cast<float>(acc[c] / sum);
        }
  }
}

}  // namespace flashslide
