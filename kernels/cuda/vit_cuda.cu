// flashslide CUDA backend: ViT forward_features on the GPU, and the Engine Backend around it.
//
// Mirrors cpu/vit_cpu.cpp, batched over all B images at once (M = B*T rows per GEMM):
//   cols = im2col(normalise(rgb))                        patch_embed.cu   bf16 [B*Np, Kp]
//   tmp  = cols W_pe^T                                   cuBLASLt         fp32 [B*Np, D]
//   x    = [cls, reg..., tmp + b_pe] + pos               patch_embed.cu   fp32 [B, T, D]
//   per block:
//     xn  = LN1(x)                                       layernorm.cu     bf16
//     qkv = xn Wqkv^T + b                                cuBLASLt, BIAS epilogue
//     att = flash_attention(qkv)                         flash_attn_fwd.cu
//     x  += att (ls1*Wproj)^T + ls1*b                    cuBLASLt, BIAS, beta=1 into fp32 x
//     xn  = LN2(x)
//     h   = GELU(xn W1^T + b1)                           cuBLASLt, GELU_BIAS epilogue
//         | SwiGLU: h = xn W1^T + b1; h[:, :Hm] = silu(h1) * h2   (elementwise.cu)
//     x  += h[:, :Hm] (ls2*W2)^T + ls2*b2                cuBLASLt, BIAS, beta=1
//   out = LN(x)                                          layernorm.cu     fp32 [B, T, D]
// Layer scale is folded into the proj/fc2 weights and biases at upload (x += g*(Wa + b) =
// x + (gW)a + gb), so bias, layer scale and residual add all happen in the GEMM epilogue and
// the residual stream is read and written once per branch. If cuBLASLt offers no algorithm
// for an fp32-output GEMM, the backend falls back (once, for good) to bf16 GEMM outputs and
// separate residual/assembly passes.
#include <cuda_bf16.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../engine/bf16.h"
#include "cuda_backend.h"
#include "cuda_check.h"
#include "flash_attn.h"
#include "gemm.h"
#include "vit_kernels.h"

namespace flashslide {
namespace cuda {

namespace {

inline size_t roundUp8(size_t v) { return (v + 7) / 8 * 8; }

template <typename T>
struct HostElem;
template <>
struct HostElem<float> {
  using type = float;
  static float conv(float v) { return v; }
};
template <>
struct HostElem<__nv_bfloat16> {
  using type = uint16_t;
  static uint16_t conv(float v) { return toBf16(v); }
};

}  // namespace

void* CudaVit::alloc(size_t bytes) {
  void* p = nullptr;
  FS_CUDA_CHECK(cudaMalloc(&p, bytes));  // 256-byte aligned, as cuBLASLt's heuristic assumes
  sizes_[p] = bytes;
  curBytes_ += bytes;
  if (curBytes_ > peakBytes_) peakBytes_ = curBytes_;
  return p;
}

void CudaVit::release(void* p) {
  if (!p) return;
  auto it = sizes_.find(p);
  if (it != sizes_.end()) {
    curBytes_ -= it->second;
    sizes_.erase(it);
  }
  cudaFree(p);
}

// rows x cols matrix (row-major, host float) -> device T with row stride ld (zero padded),
// each row optionally scaled (layer-scale folding).
template <typename T>
T* CudaVit::upload(const std::vector<float>& v, size_t rows, size_t cols, size_t ld, const float* rowScale) {
  using H = HostElem<T>;
  if (v.size() != rows * cols) throw Error("shape_mismatch", "CUDA upload: tensor size does not match its shape");
  std::vector<typename H::type> host(rows * ld, H::conv(0.f));
  for (size_t r = 0; r < rows; ++r) {
    const float s = rowScale ? rowScale[r] : 1.f;
    for (size_t c = 0; c < cols; ++c) host[r * ld + c] = H::conv(rowScale ? s * v[r * cols + c] : v[r * cols + c]);
  }
  T* d = static_cast<T*>(alloc(host.size() * sizeof(host[0])));
  FS_CUDA_CHECK(cudaMemcpy(d, host.data(), host.size() * sizeof(host[0]), cudaMemcpyHostToDevice));
  return d;
}

CudaVit::CudaVit(std::shared_ptr<const Weights> weights) : w_(std::move(weights)) {
  const ModelArch& a = w_->arch;
  const int D = a.embedDim, F = a.fc1Out, Hm = a.mlpHidden;
  if (!flashSupportedHeadDim(a.headDim))
    throw Error("unsupported_arch", "the CUDA backend's attention supports head dims 64, 80 and 128; this model has " +
                                        std::to_string(a.headDim) + " (use --device cpu)");
  if (D % 8 != 0 || D > kLayerNormMaxDim)
    throw Error("unsupported_arch", "the CUDA backend needs an embedding width that is a multiple of 8 and <= " +
                                        std::to_string(kLayerNormMaxDim) + ", got " + std::to_string(D));
  int dev = 0;
  FS_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  FS_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  if (prop.major < 8)
    throw Error("unsupported_device", std::string("the CUDA backend needs compute capability 8.0 or newer (bf16 "
                                                  "tensor cores); ") + prop.name + " is " + std::to_string(prop.major) +
                                          "." + std::to_string(prop.minor));
  if (const char* g = std::getenv("FLASHSLIDE_CUDA_GELU")) exactGelu_ = std::string(g) == "erf";

  try {
    gemm_.reset(new Gemm());
    peakBytes_ = curBytes_ += gemm_->workspaceBytes();  // counted, though Gemm owns it

    const int p = a.patchSize;
    kPatch_ = static_cast<int>(roundUp8(size_t(3) * p * p));
    ldFc2_ = static_cast<int>(roundUp8(size_t(Hm)));
    ldH_ = static_cast<int>(roundUp8(size_t(F)));
    patchW_ = upload<__nv_bfloat16>(w_->patchW, D, size_t(3) * p * p, kPatch_);
    patchB_ = upload<float>(w_->patchB, 1, D, D);
    normW_ = upload<float>(w_->normW, 1, D, D);
    normB_ = upload<float>(w_->normB, 1, D, D);
    if (a.numPrefixTokens > 0) {
      std::vector<float> tok;
      if (a.hasClsToken) tok.insert(tok.end(), w_->clsToken.begin(), w_->clsToken.end());
      tok.insert(tok.end(), w_->regToken.begin(), w_->regToken.end());
      prefixTok_ = upload<float>(tok, a.numPrefixTokens, D, D);
    }
    std::vector<float> ones(D, 1.f);
    for (const BlockWeights& bw : w_->blocks) {
      DevBlock d{};
      const float* ls1 = a.layerScale ? bw.ls1.data() : ones.data();
      const float* ls2 = a.layerScale ? bw.ls2.data() : ones.data();
      d.norm1W = upload<float>(bw.norm1W, 1, D, D);
      d.norm1B = upload<float>(bw.norm1B, 1, D, D);
      d.norm2W = upload<float>(bw.norm2W, 1, D, D);
      d.norm2B = upload<float>(bw.norm2B, 1, D, D);
      d.qkvW = upload<__nv_bfloat16>(bw.qkvW, 3 * size_t(D), D, D);
      d.qkvB = upload<__nv_bfloat16>(bw.qkvB, 1, 3 * size_t(D), 3 * size_t(D));
      d.projW = upload<__nv_bfloat16>(bw.projW, D, D, D, ls1);
      d.projB = upload<float>(bw.projB, D, 1, 1, ls1);  // a column: row r scaled by ls1[r]
      d.fc1W = upload<__nv_bfloat16>(bw.fc1W, F, D, D);
      d.fc1B = upload<__nv_bfloat16>(bw.fc1B, 1, F, F);
      d.fc2W = upload<__nv_bfloat16>(bw.fc2W, D, Hm, ldFc2_, ls2);
      d.fc2B = upload<float>(bw.fc2B, D, 1, 1, ls2);
      blocks_.push_back(d);
    }
    // Everything is on the device now: keep only the host part (arch, tokens, pos embed), so
    // that the float32 copy of the layers (1.2 GB for a ViT-L) is freed once Engine drops it too.
    w_ = std::make_shared<const Weights>(hostPart(*w_));
  } catch (...) {
    for (auto& kv : std::map<void*, size_t>(sizes_)) release(kv.first);
    throw;
  }
}

CudaVit::~CudaVit() {
  for (cudaEvent_t e : events_) cudaEventDestroy(e);
  for (auto& kv : std::map<void*, size_t>(sizes_)) release(kv.first);
}

const char* CudaVit::stageName(int s) {
  static const char* const names[kNumStages] = {"patch", "ln", "qkv", "attn", "proj", "fc1", "act", "fc2", "final"};
  return s >= 0 && s < kNumStages ? names[s] : "?";
}

void CudaVit::setGemmAutotune(bool on) { gemm_->setAutotune(on); }

void CudaVit::ensureActivations(size_t M, size_t patchRows) {
  if (M <= capTokens_ && patchRows <= capPatchRows_) return;
  const ModelArch& a = w_->arch;
  const size_t D = a.embedDim;
  // Free first: the old and new sets never need to coexist, so the peak stays one set.
  for (void* p : {static_cast<void*>(x_), xn_, qkv_, att_, h_}) release(p);
  x_ = nullptr;
  xn_ = qkv_ = att_ = h_ = nullptr;
  capTokens_ = capPatchRows_ = 0;
  x_ = static_cast<float*>(alloc(M * D * 4));
  xn_ = alloc(M * D * 2);
  qkv_ = alloc(M * 3 * D * 2);  // also the fp32 patch-GEMM output [patchRows, D] (4*Mp*D <= 6*M*D)
  att_ = alloc(M * D * 2);
  const size_t hElems = std::max(M * size_t(ldH_), patchRows * size_t(kPatch_));
  h_ = alloc(hElems * 2);
  // Zero once: the padding columns of h (fc1 width .. ldH) are never written by a GEMM and
  // must never hold NaN bit patterns.
  FS_CUDA_CHECK(cudaMemset(h_, 0, hElems * 2));
  capTokens_ = M;
  capPatchRows_ = patchRows;
}

const float* CudaVit::posDevice(const PosEmbedView& pos) {
  const auto key = std::make_pair(pos.gridH, pos.gridW);
  auto it = posCache_.find(key);
  if (it != posCache_.end()) return it->second;
  if (posCache_.size() >= 16) {  // same bound as the Engine's host-side cache
    for (auto& kv : posCache_) release(kv.second);
    posCache_.clear();
  }
  const size_t n = (size_t(pos.prefixRows) + size_t(pos.gridH) * pos.gridW) * w_->arch.embedDim;
  float* d = static_cast<float*>(alloc(n * 4));
  FS_CUDA_CHECK(cudaMemcpy(d, pos.data, n * 4, cudaMemcpyHostToDevice));
  posCache_[key] = d;
  return d;
}

void CudaVit::forwardDevice(const uint8_t* dRgb, int B, int H, int W, const PosEmbedView& pos, float* dOut,
                            cudaStream_t stream, const KeptDevice* kept) {
  const ModelArch& a = w_->arch;
  const int D = a.embedDim, p = a.patchSize, F = a.fc1Out, Hm = a.mlpHidden;
  const int gh = H / p, gw = W / p, prefix = a.numPrefixTokens;
  // Token dropping: the patch GEMM runs over the kept patches only and every image is padded
  // to kept->N tokens; everything after the assembly is the same code over M = B*T rows.
  const int Np = kept ? 0 : gh * gw, T = kept ? kept->N : prefix + gh * gw;
  if (B <= 0 || gh <= 0 || gw <= 0 || gh * p != H || gw * p != W)
    throw Error("bad_input", "CUDA forward: H and W must be positive multiples of the patch size");
  if (pos.gridH != gh || pos.gridW != gw) throw Error("bad_input", "CUDA forward: position embedding grid mismatch");
  const size_t Mz = size_t(B) * T, Mpz = kept ? size_t(kept->nPatches) : size_t(B) * Np;
  if (Mz > size_t(INT32_MAX))  // GEMM row counts are int; all element offsets are 64-bit
    throw Error("bad_input", "CUDA forward: batch too large for one pass (" + std::to_string(Mz) + " tokens)");
  ensureActivations(Mz, Mpz);
  const int M = static_cast<int>(Mz), Mp = static_cast<int>(Mpz);
  const float* posD = posDevice(pos);
  const float eps = static_cast<float>(a.layerNormEps);

  // Profiling: event i closes stage stages[i] (event 0 opens the forward).
  std::vector<int> stages;
  auto mark = [&](int stage) {
    if (!profile_) return;
    if (events_.size() <= stages.size()) {
      cudaEvent_t e;
      FS_CUDA_CHECK(cudaEventCreate(&e));
      events_.push_back(e);
    }
    FS_CUDA_CHECK(cudaEventRecord(events_[stages.size()], stream));
    stages.push_back(stage);
  };
  mark(-1);

  // Patch embedding.
  Normalize norm{};
  for (int c = 0; c < 3; ++c) {
    norm.scale[c] = static_cast<float>(1.0 / (255.0 * a.std[c]));
    norm.shift[c] = static_cast<float>(-double(a.mean[c]) / a.std[c]);
  }
  if (kept)
    im2colNormalizeGather(dRgb, H, W, p, norm, kept->patchIdx, kept->nPatches, h_, kPatch_, stream);
  else
    im2colNormalize(dRgb, B, H, W, p, norm, h_, kPatch_, stream);
  GemmArgs pe;
  pe.M = Mp;
  pe.N = D;
  pe.K = kPatch_;
  pe.X = h_;
  pe.ldx = kPatch_;
  pe.W = patchW_;
  pe.ldw = kPatch_;
  pe.Y = qkv_;
  pe.ldy = D;
  pe.out = GemmOut::F32;
  bool patchBf16 = false;
  if (!fusedResidual_ || !gemm_->run(pe, stream)) {
    pe.out = GemmOut::Bf16;
    pe.Y = att_;
    if (!gemm_->run(pe, stream)) throw Error("cuda_error", "cuBLASLt has no bf16 GEMM for the patch embedding");
    patchBf16 = true;
  }
  if (kept)
    assembleTokensMapped(pe.Y, patchBf16, patchB_, posD, pos.prefixRows, prefixTok_, kept->tokenMap, Mz, D, x_, stream);
  else
    assembleTokens(pe.Y, patchBf16, patchB_, posD, pos.prefixRows, prefixTok_, prefix, B, Np, D, x_, stream);
  mark(kPatch);

  const float scale = 1.0f / std::sqrt(static_cast<float>(a.headDim));
  // x += X W^T + bias (fp32 bias, layer scale folded in), with the fallback.
  auto residualGemm = [&](const void* X, int K, int64_t ldx, const void* Wt, int64_t ldw, const float* bias) {
    GemmArgs g;
    g.M = M;
    g.N = D;
    g.K = K;
    g.X = X;
    g.ldx = ldx;
    g.W = Wt;
    g.ldw = ldw;
    g.Y = x_;
    g.ldy = D;
    g.out = GemmOut::F32;
    g.epilogue = GemmEpilogue::Bias;
    g.bias = bias;
    g.accumulate = true;
    if (fusedResidual_ && gemm_->run(g, stream)) return;
    fusedResidual_ = false;
    g.Y = xn_;  // free at both call sites: consumed by the qkv / fc1 GEMM before
    g.out = GemmOut::Bf16;
    g.epilogue = GemmEpilogue::None;
    g.bias = nullptr;
    g.accumulate = false;
    if (!gemm_->run(g, stream)) throw Error("cuda_error", "cuBLASLt has no plain bf16 GEMM for this shape");
    residualAddBf16(x_, xn_, bias, M, D, stream);
  };

  for (const DevBlock& blk : blocks_) {
    // Attention branch.
    layerNormToBf16(x_, M, D, blk.norm1W, blk.norm1B, eps, xn_, stream);
    mark(kLn);
    GemmArgs q;
    q.M = M;
    q.N = 3 * D;
    q.K = D;
    q.X = xn_;
    q.ldx = D;
    q.W = blk.qkvW;
    q.ldw = D;
    q.Y = qkv_;
    q.ldy = 3 * D;
    q.epilogue = GemmEpilogue::Bias;
    q.bias = blk.qkvB;
    if (!gemm_->run(q, stream)) throw Error("cuda_error", "cuBLASLt has no bf16 bias GEMM for the qkv projection");
    mark(kQkv);
    flashAttentionForward(qkv_, att_, B, T, a.numHeads, a.headDim, 3 * D, D, scale, stream, -1,
                          kept ? kept->seqLens : nullptr);
    mark(kAttn);
    residualGemm(att_, D, D, blk.projW, D, blk.projB);
    mark(kProj);

    // MLP branch.
    layerNormToBf16(x_, M, D, blk.norm2W, blk.norm2B, eps, xn_, stream);
    mark(kLn);
    GemmArgs f1;
    f1.M = M;
    f1.N = F;
    f1.K = D;
    f1.X = xn_;
    f1.ldx = D;
    f1.W = blk.fc1W;
    f1.ldw = D;
    f1.Y = h_;
    f1.ldy = ldH_;
    f1.bias = blk.fc1B;
    const bool gelu = a.mlp == MlpKind::Gelu;
    f1.epilogue = (gelu && !exactGelu_) ? GemmEpilogue::GeluBias : GemmEpilogue::Bias;
    if (!gemm_->run(f1, stream)) {
      if (f1.epilogue != GemmEpilogue::GeluBias) throw Error("cuda_error", "cuBLASLt has no bf16 bias GEMM for fc1");
      exactGelu_ = true;  // no fused GELU available: bias epilogue + exact GELU pass from now on
      f1.epilogue = GemmEpilogue::Bias;
      if (!gemm_->run(f1, stream)) throw Error("cuda_error", "cuBLASLt has no bf16 bias GEMM for fc1");
    }
    mark(kFc1);
    if (!gelu)
      swigluInPlace(h_, M, Hm, ldH_, stream);
    else if (exactGelu_)
      geluErfInPlace(h_, M, F, ldH_, stream);
    mark(kAct);
    // K = Hm rounded up to 8 (16-byte rows for cuBLASLt). The extra columns of h hold finite
    // values (fc1's gate half for SwiGLU, zeros or stale im2col values otherwise) and meet
    // zero weight columns, so they add exactly 0.
    residualGemm(h_, ldFc2_, ldH_, blk.fc2W, ldFc2_, blk.fc2B);
    mark(kFc2);
  }
  layerNormToF32(x_, M, D, normW_, normB_, eps, dOut, stream);
  mark(kFinal);
  if (profile_) {
    FS_CUDA_CHECK(cudaEventSynchronize(events_[stages.size() - 1]));
    for (float& t : stageMs_) t = 0.f;
    for (size_t i = 1; i < stages.size(); ++i) {
      float ms = 0.f;
      FS_CUDA_CHECK(cudaEventElapsedTime(&ms, events_[i - 1], events_[i]));
      stageMs_[stages[i]] += ms;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Engine backend: host buffers in, host buffers out.
// ---------------------------------------------------------------------------------------
namespace {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(std::shared_ptr<const Weights> w) : vit_(std::move(w)) {
    FS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  ~CudaBackend() override {
    if (rgb_) cudaFree(rgb_);
    if (out_) cudaFree(out_);
    if (rows_) cudaFree(rows_);
    if (sel_) cudaFree(sel_);
    if (sums_) cudaFree(sums_);
    if (keptIdx_) cudaFree(keptIdx_);
    if (stream_) cudaStreamDestroy(stream_);
  }
  const char* name() const override { return "cuda"; }

  void forward(const uint8_t* rgb, int B, int H, int W, const PosEmbedView& pos, float* out) override {
    const size_t inBytes = size_t(B) * H * W * 3;
    const size_t outBytes = size_t(B) * vit_.arch().tokens(H, W) * vit_.arch().embedDim * 4;
    grow(&rgb_, &rgbCap_, inBytes);
    grow(reinterpret_cast<void**>(&out_), &outCap_, outBytes);
    FS_CUDA_CHECK(cudaMemcpyAsync(rgb_, rgb, inBytes, cudaMemcpyHostToDevice, stream_));
    vit_.forwardDevice(static_cast<const uint8_t*>(rgb_), B, H, W, pos, out_, stream_);
    FS_CUDA_CHECK(cudaMemcpyAsync(out, out_, outBytes, cudaMemcpyDeviceToHost, stream_));
    FS_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  // The pipeline's path: the kept token rows leave the GPU as BF16 (a quarter to a sixth of the
  // fp32 output's bytes for a tissue region) with their column sums, and the host does no
  // conversion or summing.
  void forwardRowsBf16(const uint8_t* rgb, int B, int H, int W, const PosEmbedView& pos, size_t T, size_t D,
                       const int32_t* rows, size_t nRows, uint16_t* out, double* colSums) override {
    const size_t inBytes = size_t(B) * H * W * 3;
    const size_t outBytes = size_t(B) * T * D * 4;
    grow(&rgb_, &rgbCap_, inBytes);
    grow(reinterpret_cast<void**>(&out_), &outCap_, outBytes);
    grow(reinterpret_cast<void**>(&rows_), &rowsCap_, nRows * sizeof(int32_t));
    grow(&sel_, &selCap_, nRows * D * 2);
    grow(reinterpret_cast<void**>(&sums_), &sumsCap_, D * sizeof(double));
    FS_CUDA_CHECK(cudaMemcpyAsync(rgb_, rgb, inBytes, cudaMemcpyHostToDevice, stream_));
    if (nRows > 0) FS_CUDA_CHECK(cudaMemcpyAsync(rows_, rows, nRows * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
    vit_.forwardDevice(static_cast<const uint8_t*>(rgb_), B, H, W, pos, out_, stream_);
    gatherRowsBf16(out_, rows_, int64_t(nRows), int(D), sel_, stream_);
    columnSumsBf16(sel_, int64_t(nRows), int(D), sums_, stream_);
    if (nRows > 0) FS_CUDA_CHECK(cudaMemcpyAsync(out, sel_, nRows * D * 2, cudaMemcpyDeviceToHost, stream_));
    FS_CUDA_CHECK(cudaMemcpyAsync(colSums, sums_, D * sizeof(double), cudaMemcpyDeviceToHost, stream_));
    FS_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  // Token dropping: each image's prefix and kept tokens, back to back on the host.
  void forwardKept(const uint8_t* rgb, int B, int H, int W, const PosEmbedView& pos, const KeptPatches& kept,
                   const KeptLayout& layout, float* out) override {
    const size_t D = size_t(vit_.arch().embedDim);
    const int N = runKept(rgb, B, H, W, pos, kept, layout);
    for (int b = 0; b < B; ++b) {
      const size_t rows = layout.start[b + 1] - layout.start[b];
      FS_CUDA_CHECK(cudaMemcpyAsync(out + layout.start[b] * D, out_ + size_t(b) * N * D, rows * D * 4,
                                    cudaMemcpyDeviceToHost, stream_));
    }
    FS_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void forwardKeptRowsBf16(const uint8_t* rgb, int B, int H, int W, const PosEmbedView& pos, const KeptPatches& kept,
                           const KeptLayout& layout, size_t D, const int32_t* rows, size_t nRows, uint16_t* out,
                           double* colSums) override {
    const int N = static_cast<int>(layout.maxTokens);
    // Output rows (packed) -> rows of the padded batch on the device.
    std::vector<int32_t> padded(nRows);
    for (size_t i = 0; i < nRows; ++i) {
      const size_t r = size_t(rows[i]);
      const size_t b = size_t(std::upper_bound(layout.start.begin(), layout.start.end(), r) - layout.start.begin()) - 1;
      padded[i] = static_cast<int32_t>(b * N + (r - layout.start[b]));
    }
    grow(reinterpret_cast<void**>(&rows_), &rowsCap_, nRows * sizeof(int32_t));
    grow(&sel_, &selCap_, nRows * D * 2);
    grow(reinterpret_cast<void**>(&sums_), &sumsCap_, D * sizeof(double));
    if (nRows > 0) FS_CUDA_CHECK(cudaMemcpyAsync(rows_, padded.data(), nRows * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
    runKept(rgb, B, H, W, pos, kept, layout);
    gatherRowsBf16(out_, rows_, int64_t(nRows), int(D), sel_, stream_);
    columnSumsBf16(sel_, int64_t(nRows), int(D), sums_, stream_);
    if (nRows > 0) FS_CUDA_CHECK(cudaMemcpyAsync(out, sel_, nRows * D * 2, cudaMemcpyDeviceToHost, stream_));
    FS_CUDA_CHECK(cudaMemcpyAsync(colSums, sums_, D * sizeof(double), cudaMemcpyDeviceToHost, stream_));
    FS_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

 private:
  // Uploads the batch and its selection (patch list, token map, lengths: one buffer, one copy)
  // and runs the padded forward into out_ [B, N, D]. Returns N. Asynchronous on stream_.
  int runKept(const uint8_t* rgb, int B, int H, int W, const PosEmbedView& pos, const KeptPatches& kept,
              const KeptLayout& layout) {
    const ModelArch& a = vit_.arch();
    const int P = a.numPrefixTokens, N = static_cast<int>(layout.maxTokens);
    const int64_t np = int64_t(H / a.patchSize) * (W / a.patchSize), nKept = kept.offsets[B];
    // One int32 buffer: patchIdx [nKept, padded to even so that the int2 map is 8-byte
    // aligned], tokenMap [B*N] as int2, seqLens [B].
    const size_t idxLen = size_t(nKept + 1) / 2 * 2;
    keptHost_.assign(idxLen + 2 * size_t(B) * N + size_t(B), 0);
    int32_t* idx = keptHost_.data();
    int32_t* map = idx + idxLen;
    int32_t* lens = map + 2 * size_t(B) * N;
    for (int b = 0; b < B; ++b) {
      const int32_t k0 = kept.offsets[b], k = kept.offsets[b + 1] - k0;
      for (int32_t i = 0; i < k; ++i) idx[k0 + i] = static_cast<int32_t>(b * np + kept.patches[k0 + i]);
      for (int t = 0; t < N; ++t) {
        int32_t* m = map + 2 * (size_t(b) * N + t);
        if (t < P) {
          m[0] = -2 - t;
        } else if (t < P + k) {
          m[0] = k0 + (t - P);
          m[1] = kept.patches[k0 + (t - P)];
        } else {
          m[0] = -1;
        }
      }
      lens[b] = P + k;
    }
    const size_t inBytes = size_t(B) * H * W * 3;
    grow(&rgb_, &rgbCap_, inBytes);
    grow(reinterpret_cast<void**>(&out_), &outCap_, size_t(B) * N * a.embedDim * 4);
    grow(reinterpret_cast<void**>(&keptIdx_), &keptCap_, keptHost_.size() * sizeof(int32_t));
    FS_CUDA_CHECK(cudaMemcpyAsync(rgb_, rgb, inBytes, cudaMemcpyHostToDevice, stream_));
    FS_CUDA_CHECK(cudaMemcpyAsync(keptIdx_, keptHost_.data(), keptHost_.size() * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
    KeptDevice kd;
    kd.N = N;
    kd.nPatches = nKept;
    kd.patchIdx = keptIdx_;
    kd.tokenMap = reinterpret_cast<const int2*>(keptIdx_ + idxLen);
    kd.seqLens = keptIdx_ + idxLen + 2 * size_t(B) * N;
    vit_.forwardDevice(static_cast<const uint8_t*>(rgb_), B, H, W, pos, out_, stream_, &kd);
    return N;
  }

  static void grow(void** p, size_t* cap, size_t need) {
    if (need <= *cap) return;
    if (*p) cudaFree(*p);
    *p = nullptr;
    *cap = 0;
    FS_CUDA_CHECK(cudaMalloc(p, need));
    *cap = need;
  }

  CudaVit vit_;
  cudaStream_t stream_ = nullptr;
  void* rgb_ = nullptr;
  float* out_ = nullptr;
  int32_t* rows_ = nullptr;
  void* sel_ = nullptr;
  double* sums_ = nullptr;
  int32_t* keptIdx_ = nullptr;
  std::vector<int32_t> keptHost_;
  size_t rgbCap_ = 0, outCap_ = 0, rowsCap_ = 0, selCap_ = 0, sumsCap_ = 0, keptCap_ = 0;
};

}  // namespace

}  // namespace cuda

std::unique_ptr<Backend> makeCudaBackend(std::shared_ptr<const Weights> weights) {
  return std::unique_ptr<Backend>(new cuda::CudaBackend(std::move(weights)));
}

}  // namespace flashslide
