// flashslide CUDA backend: the ViT forward on the GPU (vit_cuda.cu).
//
// CudaVit holds the model on the device and runs forward_features on device buffers; the
// Engine's Backend (makeCudaBackend, declared in engine.h) wraps it with host<->device copies.
// The benchmark and the C API (capi.cu) call forwardDevice directly so that timings contain
// no PCIe transfers, like timm's.
//
// Precision: weights and activations bf16, every GEMM and the attention accumulate in fp32,
// LayerNorm statistics and softmax in fp32, and the residual stream in fp32 (so the many
// small branch outputs added to it are not rounded to 8 bits of mantissa each time).
//
// Device memory: weights (bf16 matrices, fp32 vectors) once; activation buffers sized for
// the largest batch x tokens seen so far and reused by every layer and every forward:
//   x fp32 [M, D], xn bf16 [M, D], qkv bf16 [M, 3D], att bf16 [M, D], h bf16 [M, F8]
// (M = B*T tokens, F8 = fc1 width rounded up to 8), i.e. ~(4 + 2 + 6 + 2 + 2*F/D) * M * D
// bytes, linear in the token count; plus cuBLASLt's 32 MiB workspace and the resampled
// position embeddings (cached per patch grid). peakDeviceBytes() reports the high-water
// mark of all of these.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "../engine/engine.h"

namespace flashslide {
namespace cuda {

class Gemm;

// A kept forward's batch on the device (engine.h KeptPatches): every image is padded to N
// tokens; rows past an image's own are padding (zero at the start, finite throughout, never
// attended to, never read back).
struct KeptDevice {
  int N = 0;                     // prefix + the longest image's kept patches
  int64_t nPatches = 0;          // kept patches in the batch
  const int32_t* patchIdx = nullptr;  // [nPatches] batch-wide patch index (im2colNormalizeGather)
  const int2* tokenMap = nullptr;     // [B*N] (assembleTokensMapped)
  const int* seqLens = nullptr;       // [B] prefix + kept patches of each image
};

class CudaVit {
 public:
  // Uploads (and converts) the weights to the current device. Throws Error:
  // unsupported_arch for head dims / widths the kernels do not cover, out_of_memory,
  // cuda_error.
  explicit CudaVit(std::shared_ptr<const Weights> weights);
  ~CudaVit();
  CudaVit(const CudaVit&) = delete;
  CudaVit& operator=(const CudaVit&) = delete;

  const ModelArch& arch() const { return w_->arch; }

  // dRgb: device [B, H, W, 3] uint8; dOut: device [B, T, D] fp32. pos: the host-side
  // resampled position embedding for this grid (uploaded once per grid and cached).
  // Asynchronous on `stream` (the caller synchronises). kept (optional): token dropping, T =
  // kept->N, dOut [B, N, D] with each image's prefix and kept tokens first.
  void forwardDevice(const uint8_t* dRgb, int B, int H, int W, const PosEmbedView& pos, float* dOut,
                     cudaStream_t stream, const KeptDevice* kept = nullptr);

  size_t deviceBytes() const { return curBytes_; }      // held now
  size_t peakDeviceBytes() const { return peakBytes_; }  // high-water mark since construction
  bool fusedResidual() const { return fusedResidual_; }  // false once the fallback was taken

  // Per-stage timing (benchmarks only): with profiling on, forwardDevice records a CUDA
  // event after every stage, synchronises at its end and sums the gaps per stage kind into
  // stageMs() (reset at the start of each profiled forward). Off: no events, no syncs.
  enum Stage { kPatch, kLn, kQkv, kAttn, kProj, kFc1, kAct, kFc2, kFinal, kNumStages };
  static const char* stageName(int s);
  void setProfile(bool on) { profile_ = on; }
  const float* stageMs() const { return stageMs_; }
  void setGemmAutotune(bool on);

 private:
  struct DevBlock {
    float *norm1W, *norm1B, *norm2W, *norm2B;
    void *qkvW, *qkvB;   // bf16 [3D, D], bf16 [3D]
    void* projW;         // bf16 [D, D], rows scaled by ls1
    float* projB;        // fp32 [D], ls1 * b
    void *fc1W, *fc1B;   // bf16 [F, D], bf16 [F]
    void* fc2W;          // bf16 [D, ldFc2], rows scaled by ls2, K padded with zeros
    float* fc2B;         // fp32 [D], ls2 * b
  };

  void* alloc(size_t bytes);
  void release(void* p);
  template <typename T>
  T* upload(const std::vector<float>& v, size_t rows, size_t cols, size_t ld, const float* rowScale = nullptr);
  void ensureActivations(size_t M, size_t patchRows);
  const float* posDevice(const PosEmbedView& pos);

  std::shared_ptr<const Weights> w_;
  std::unique_ptr<Gemm> gemm_;
  std::map<void*, size_t> sizes_;
  size_t curBytes_ = 0, peakBytes_ = 0;

  // weights
  std::vector<DevBlock> blocks_;
  void* patchW_ = nullptr;  // bf16 [D, kPatch]
  float* patchB_ = nullptr;
  float* prefixTok_ = nullptr;  // [prefix, D] cls then registers (may be null)
  float *normW_ = nullptr, *normB_ = nullptr;
  int kPatch_ = 0, ldFc2_ = 0, ldH_ = 0;
  bool exactGelu_ = false, fusedResidual_ = true;

  // activations
  size_t capTokens_ = 0, capPatchRows_ = 0;
  float* x_ = nullptr;
  void *xn_ = nullptr, *qkv_ = nullptr, *att_ = nullptr, *h_ = nullptr;

  std::map<std::pair<int, int>, float*> posCache_;

  bool profile_ = false;
  float stageMs_[kNumStages] = {};
  std::vector<cudaEvent_t> events_;  // pool for profiled forwards, destroyed with the object
};

}  // namespace cuda
}  // namespace flashslide
