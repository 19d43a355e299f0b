// flashslide CPU backend: ViT forward_features on the host.
//
// Per image (the batch is processed one image at a time so peak memory is independent
// of B and linear in T):
//   patches = im2col(normalise(rgb))   [Np, 3*p*p]  columns ordered (c, ky, kx) = conv weight order
//   x[prefix:] = patches W_pe^T + b    [Np, D]      (cblas_sgemm)
//   x[:prefix] = cls, reg...; pos-embed added per timm _pos_embed:
//       no_embed_class=False: pos has entries for prefix + patches, added to all rows
//       no_embed_class=True : pos covers patches only, prefix tokens get none
//   per block:  x += ls1 * proj(attn(LN1(x)));  x += ls2 * fc2(act(fc1(LN2(x))))
//       act = exact-erf GELU, or packed SwiGLU: silu(h[:, :Hm]) * h[:, Hm:]
//   x = LN(x)   (eps from config, 1e-6 for timm ViTs)
// The residual stream x lives directly in the caller's output slice [T, D]. Scratch
// (allocated once per forward, reused by every layer):
//   xn [T, D]  qkv [T, 3D]  att [T, D]  h [T, max(F, 3p^2)]  + attention panels ~3*T*D
// i.e. O(T*(D + F)), never O(T^2). All linears are y = x W^T + b with W in PyTorch
// [out, in] layout -> one sgemm(NoTrans, Trans); bias, activation, layer scale and the
// residual add are fused into a single pass over the GEMM output.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../engine/engine.h"
#include "attention_cpu.h"

// OpenBLAS extension; weak so that linking another CBLAS still works.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace flashslide {

namespace {

// C[M, N] = A[M, K] (row stride lda) * W[N, K]^T, split over the OpenMP team.
// BLAS runs single-threaded inside each OpenMP thread (see CpuBackend's constructor):
// letting OpenBLAS's own pthread pool and libgomp's pool alternate on the same cores
// cost ~2x in measurements (each pool spin-waits / sched_yields while the other works).
// Each thread packs the whole operand it does not split. Splitting N (weight rows) was
// as fast or faster than splitting M at every ViT-B shape measured (197..4097 tokens)
// and 3-4x faster at 197 tokens, where splitting M makes every thread re-pack the
// full weight matrix; M is split only when N is too small to give each thread work.
void gemmNT(const float* A, int M, int K, int lda, const float* W, int N, float* C, int ldc) {
  const bool splitN = N >= 64 * omp_get_max_threads() || N >= M;
  const int extent = splitN ? N : M;
  const int nt = std::max(1, std::min(omp_get_max_threads(), extent / 64));
  if (nt == 1) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, lda, W, K, 0.0f, C, ldc);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    const int chunk = ((extent + n - 1) / n + 15) / 16 * 16;  // multiples of 16: whole cache lines
    const int e0 = std::min(extent, t * chunk), e1 = std::min(extent, e0 + chunk);
    if (e1 > e0) {
      if (splitN)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, e1 - e0, K, 1.0f, A, lda,
                    W + static_cast<size_t>(e0) * K, K, 0.0f, C + e0, ldc);
      else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, e1 - e0, N, K, 1.0f,
                    A + static_cast<size_t>(e0) * lda, lda, W, K, 0.0f, C + static_cast<size_t>(e0) * ldc, ldc);
    }
  }
}

// y = (x - mean) / sqrt(var + eps) * w + b, per row of D. Statistics in double: rows are
// long (up to 1536) and the residual stream can have a large mean.
void layerNorm(const float* x, int T, int D, const float* w, const float* b, double eps, float* y) {
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; ++t) {
    const float* xr = x + static_cast<size_t>(t) * D;
    float* yr = y + static_cast<size_t>(t) * D;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int c = 0; c < D; ++c) s += xr[c];
    const double mean = s / D;
    double v = 0;
#pragma omp simd reduction(+ : v)
    for (int c = 0; c < D; ++c) {
      const double dlt = xr[c] - mean;
      v += dlt * dlt;
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(v / D + eps));
    const float m = static_cast<float>(mean);
    for (int c = 0; c < D; ++c) yr[c] = (xr[c] - m) * inv * w[c] + b[c];
  }
}

// x += g * (y + b), g = layer scale (nullptr = 1). Fuses bias, layer scale, residual.
void addScaledResidual(float* x, const float* y, int T, int D, const float* b, const float* g) {
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; ++t) {
    float* xr = x + static_cast<size_t>(t) * D;
    const float* yr = y + static_cast<size_t>(t) * D;
    if (g)
      for (int c = 0; c < D; ++c) xr[c] += g[c] * (yr[c] + b[c]);
    else
      for (int c = 0; c < D; ++c) xr[c] += yr[c] + b[c];
  }
}

void addBias(float* y, int T, int N, const float* b) {
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; ++t) {
    float* yr = y + static_cast<size_t>(t) * N;
    for (int c = 0; c < N; ++c) yr[c] += b[c];
  }
}

// In place on h [T, F]: GELU(h + b), exact erf form (timm nn.GELU default).
void biasGelu(float* h, int T, int F, const float* b) {
  const float kInvSqrt2 = 0.70710678118654752f;
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; ++t) {
    float* r = h + static_cast<size_t>(t) * F;
    for (int c = 0; c < F; ++c) {
      const float v = r[c] + b[c];
      r[c] = 0.5f * v * (1.0f + std::erf(v * kInvSqrt2));
    }
  }
}

// h [T, 2*Hm] -> first Hm columns of each row = silu(h1 + b1) * (h2 + b2) (timm
// SwiGLUPacked = GluMlp(gate_last=False): act on the first chunk). The result stays
// in place with row stride 2*Hm so fc2 can read it with lda = 2*Hm, no copy.
void biasSwiGLU(float* h, int T, int Hm, const float* b) {
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; ++t) {
    float* r = h + static_cast<size_t>(t) * 2 * Hm;
    for (int c = 0; c < Hm; ++c) {
      const float a = r[c] + b[c];
      const float g = r[Hm + c] + b[Hm + c];
      r[c] = a / (1.0f + std::exp(-a)) * g;
    }
  }
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(std::shared_ptr<const Weights> w) : w_(std::move(w)) {
    // One thread pool (OpenMP) owns the cores; OpenBLAS is used as a single-threaded
    // kernel library from inside it (gemmNT). This is a process-wide OpenBLAS setting,
    // idempotent, and the only one the engine makes; it is looked up weakly so the
    // library still links against another CBLAS.
    if (openblas_set_num_threads) openblas_set_num_threads(1);
    const ModelArch& a = w_->arch;
    // (u/255 - mean)/std for all 256 byte values, per channel; computed in double so
    // the float we use is the correctly rounded normalised value.
    for (int c = 0; c < 3; ++c)
      for (int v = 0; v < 256; ++v)
        lut_[c][v] = static_cast<float>((v / 255.0 - static_cast<double>(a.mean[c])) /
                                        static_cast<double>(a.std[c]));
  }

  const char* name() const override { return "cpu"; }

  void forward(const uint8_t* rgb, int B, int H, int W, const PosEmbedView& pos,
               float* out) override {
    const ModelArch& a = w_->arch;
    const size_t TD = a.tokens(H, W) * static_cast<size_t>(a.embedDim);
    Scratch sc;
    for (int bi = 0; bi < B; ++bi)
      forwardImage(rgb + static_cast<size_t>(bi) * H * W * 3, H, W, pos, nullptr, 0, out + bi * TD, sc);
  }

  // One image at a time, as forward(), each with its own token count.
  void forwardKept(const uint8_t* rgb, int B, int H, int W, const PosEmbedView& pos, const KeptPatches& kept,
                   const KeptLayout& layout, float* out) override {
    const size_t D = static_cast<size_t>(w_->arch.embedDim);
    Scratch sc;
    for (int bi = 0; bi < B; ++bi) {
      const int32_t k0 = kept.offsets[bi], k1 = kept.offsets[bi + 1];
      forwardImage(rgb + static_cast<size_t>(bi) * H * W * 3, H, W, pos, kept.patches + k0, k1 - k0,
                   out + layout.start[bi] * D, sc);
    }
  }

 private:
  // Buffers reused across the images of one call (grown to the longest).
  struct Scratch {
    std::vector<float> xn, qkv, att, h;
    AttentionWorkspace ws;
  };

  // One image into x [T, D]: all its patches (keep == nullptr), or the nKeep patches listed in
  // keep (grid indices), each with its own position embedding row.
  void forwardImage(const uint8_t* img, int H, int W, const PosEmbedView& pos, const int32_t* keep, int nKeep,
                    float* x, Scratch& sc) {
    const Weights& w = *w_;
    const ModelArch& a = w.arch;
    const int D = a.embedDim, p = a.patchSize, F = a.fc1Out, Hm = a.mlpHidden;
    const int gw = W / p;
    const int Np = keep ? nKeep : (H / p) * gw;
    const int prefix = a.numPrefixTokens;
    const int T = prefix + Np;
    const int K = 3 * p * p;
    const size_t TD = static_cast<size_t>(T) * D;
    auto atLeast = [](std::vector<float>& v, size_t n) {
      if (v.size() < n) v.resize(n);
    };
    atLeast(sc.xn, TD);
    atLeast(sc.qkv, 3 * TD);
    atLeast(sc.att, TD);
    atLeast(sc.h, static_cast<size_t>(T) * std::max(F, K));
    const float scale = 1.0f / std::sqrt(static_cast<float>(a.headDim));
    auto gridIndex = [&](int n) { return keep ? keep[n] : n; };

    // im2col into h (free until the first fc1).
    float* cols = sc.h.data();
#pragma omp parallel for schedule(static)
    for (int n = 0; n < Np; ++n) {
      const int g = gridIndex(n), gy = g / gw, gx = g % gw;
      float* dst = cols + static_cast<size_t>(n) * K;
      for (int c = 0; c < 3; ++c)
        for (int ky = 0; ky < p; ++ky) {
          const uint8_t* src = img + (static_cast<size_t>(gy * p + ky) * W + gx * p) * 3 + c;
          float* d = dst + (c * p + ky) * p;
          for (int kx = 0; kx < p; ++kx) d[kx] = lut_[c][src[3 * kx]];
        }
    }
    float* xp = x + static_cast<size_t>(prefix) * D;
    gemmNT(cols, Np, K, K, w.patchW.data(), D, xp, D);

    // Prefix tokens and position embedding (a kept patch gets the row of its grid place).
    const float* posPatch = pos.data + static_cast<size_t>(pos.prefixRows) * D;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < Np; ++n) {
      float* r = xp + static_cast<size_t>(n) * D;
      const float* pr = posPatch + static_cast<size_t>(gridIndex(n)) * D;
      for (int c = 0; c < D; ++c) r[c] += w.patchB[c] + pr[c];
    }
    for (int k = 0; k < prefix; ++k) {
      const float* tok = (a.hasClsToken && k == 0)
                             ? w.clsToken.data()
                             : w.regToken.data() + static_cast<size_t>(k - (a.hasClsToken ? 1 : 0)) * D;
      float* r = x + static_cast<size_t>(k) * D;
      for (int c = 0; c < D; ++c)
        r[c] = tok[c] + (pos.prefixRows ? pos.data[static_cast<size_t>(k) * D + c] : 0.0f);
    }

    float *xn = sc.xn.data(), *qkv = sc.qkv.data(), *att = sc.att.data(), *h = sc.h.data();
    for (int l = 0; l < a.depth; ++l) {
      const BlockWeights& bw = w.blocks[l];
      // Attention branch.
      layerNorm(x, T, D, bw.norm1W.data(), bw.norm1B.data(), a.layerNormEps, xn);
      gemmNT(xn, T, D, D, bw.qkvW.data(), 3 * D, qkv, 3 * D);
      addBias(qkv, T, 3 * D, bw.qkvB.data());
      attention_flash(qkv, 1, T, a.numHeads, a.headDim, scale, att, sc.ws);
      gemmNT(att, T, D, D, bw.projW.data(), D, xn, D);
      addScaledResidual(x, xn, T, D, bw.projB.data(), a.layerScale ? bw.ls1.data() : nullptr);
      // MLP branch.
      layerNorm(x, T, D, bw.norm2W.data(), bw.norm2B.data(), a.layerNormEps, xn);
      gemmNT(xn, T, D, D, bw.fc1W.data(), F, h, F);
      if (a.mlp == MlpKind::SwiGLU)
        biasSwiGLU(h, T, Hm, bw.fc1B.data());
      else
        biasGelu(h, T, F, bw.fc1B.data());
      gemmNT(h, T, Hm, F, bw.fc2W.data(), D, xn, D);
      addScaledResidual(x, xn, T, D, bw.fc2B.data(), a.layerScale ? bw.ls2.data() : nullptr);
    }
    layerNorm(x, T, D, w.normW.data(), w.normB.data(), a.layerNormEps, x);
  }

  std::shared_ptr<const Weights> w_;
  float lut_[3][256];
};

}  // namespace

std::unique_ptr<Backend> makeCpuBackend(std::shared_ptr<const Weights> weights) {
  return std::unique_ptr<Backend>(new CpuBackend(std::move(weights)));
}

}  // namespace flashslide
