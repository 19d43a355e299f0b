// flashslide engine: backend-neutral ViT feature extractor.
//
// Engine::forward computes timm VisionTransformer.forward_features for a batch of
// uint8 RGB tiles:
//   in  rgb [B, H, W, 3] uint8, HWC, row-major (tile as decoded from the slide)
//   out     [B, T, D] float32, T = cls? + R + (H/p)*(W/p): all tokens [cls, reg..., patches]
//           after the final LayerNorm, patches in row-major grid order.
// Pixel normalisation (x/255 - mean)/std happens inside, so callers never touch floats.
// H and W must be multiples of the patch size (no implicit crop/pad: silently cropping
// a tile would change the features). Any H, W are accepted; the position embedding is
// resampled (timm dynamic_img_size, antialiased bicubic) and cached per patch grid.
//
// Structure: Engine owns the validated Weights (plain float host arrays, shared) and a
// Backend that runs the math: the CPU backend, or the CUDA backend (cuda/) in builds made
// with nvcc and cuBLASLt (FLASHSLIDE_HAVE_CUDA). Thread safety: no globals; separate Engine
// instances are independent; forward() on one instance is serialised by a mutex (backends keep
// per-instance scratch/caches and need not be reentrant themselves).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "error.h"
#include "vit_config.h"
#include "weights.h"

namespace flashslide {

enum class Device { Cpu, Cuda };

struct ForwardResult {
  int batch = 0;
  int tokens = 0;   // T
  int dim = 0;      // D
  int gridH = 0, gridW = 0;
  double millis = 0;  // wall time of the backend forward
};

// Position embedding resampled for one patch grid: [prefixRows + gridH*gridW, D].
struct PosEmbedView {
  int gridH = 0, gridW = 0;
  int prefixRows = 0;  // arch.posEmbedPrefix
  const float* data = nullptr;
};

// Token dropping: which patches of each image enter the model. Image b keeps
// patches[offsets[b] .. offsets[b+1]) (indices into its row-major patch grid, strictly
// increasing; at least one). The others are dropped before the first block: a kept token
// attends to its image's prefix tokens and kept patches only, and carries the position
// embedding of its true place in the grid, so a region is analysed as its tissue alone.
// Output of image b: its prefix tokens then its kept patches; images concatenated:
// [sum_b (prefix + k_b), D] (KeptLayout gives the offsets).
struct KeptPatches {
  const int32_t* offsets = nullptr;  // [B + 1], offsets[0] = 0
  const int32_t* patches = nullptr;  // [offsets[B]]
};

// Where image b's tokens start in a kept forward's output, and how many there are.
struct KeptLayout {
  std::vector<size_t> start;  // [B + 1]: image b's rows are start[b] .. start[b+1]
  size_t maxTokens = 0;       // the longest image: prefix + max_b k_b
  size_t rows() const { return start.empty() ? 0 : start.back(); }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // Preconditions checked by Engine: B >= 1, H, W positive multiples of p, pointers valid.
  virtual void forward(const uint8_t* rgb, int B, int H, int W, const PosEmbedView& pos,
                       float* out) = 0;
  // The given rows of forward()'s [B*T, D] output, as BF16 (engine/bf16.h rounding), into
  // out[nRows * D], and colSums[D] (double) = the column sums of those BF16 values, each column
  // added in row order from 0 (so bit-identical wherever it is computed); rows already checked
  // against B*T. This default runs forward() into a host buffer and gathers there; the CUDA
  // backend gathers and sums on the device so that only the kept rows, at half the bytes, cross
  // the bus. T, D: tokens per image and embedding width (the Engine's arch).
  virtual void forwardRowsBf16(const uint8_t* rgb, int B, int H, int W, const PosEmbedView& pos,
                               size_t T, size_t D, const int32_t* rows, size_t nRows, uint16_t* out,
                               double* colSums);
  // forward() with token dropping (see KeptPatches); out: layout.rows() x D. Checked by Engine.
  virtual void forwardKept(const uint8_t* rgb, int B, int H, int W, const PosEmbedView& pos,
                           const KeptPatches& kept, const KeptLayout& layout, float* out) = 0;
  // forwardRowsBf16() of forwardKept()'s output rows. Default: forwardKept into a host buffer.
  virtual void forwardKeptRowsBf16(const uint8_t* rgb, int B, int H, int W, const PosEmbedView& pos,
                                   const KeptPatches& kept, const KeptLayout& layout, size_t D,
                                   const int32_t* rows, size_t nRows, uint16_t* out, double* colSums);
};

// The rows[] of all (nAll x D floats) as BF16 into out, and their column sums (row order).
void gatherRowsBf16Host(const float* all, size_t D, const int32_t* rows, size_t nRows, uint16_t* out,
                        double* colSums);

// Defined by the CPU backend (cpu/vit_cpu.cpp).
std::unique_ptr<Backend> makeCpuBackend(std::shared_ptr<const Weights> weights);
// Defined by the CUDA backend (cuda/vit_cuda.cu), linked only into builds compiled with
// FLASHSLIDE_HAVE_CUDA; without it Device::Cuda is an unsupported_device error.
std::unique_ptr<Backend> makeCudaBackend(std::shared_ptr<const Weights> weights);

class Engine {
 public:
  // Reads + validates a timm-named safetensors checkpoint. Throws flashslide::Error.
  static std::unique_ptr<Engine> load(const std::string& weightsPath, const ModelConfig& cfg,
                                      Device device = Device::Cpu);
  // Builds from tensors already in memory (bench, converters, tests).
  static std::unique_ptr<Engine> fromTensors(TensorMap tensors, const ModelConfig& cfg,
                                             Device device = Device::Cpu,
                                             const std::string& sourceName = "<memory>");
  static std::unique_ptr<Engine> fromWeights(Weights weights, Device device = Device::Cpu);

  const ModelArch& arch() const { return weights_->arch; }
  Device device() const { return device_; }
  const char* backendName() const { return backend_->name(); }
  // Tokens per image, T. Throws Error("bad_input") if H/W are not multiples of p.
  size_t tokens(int H, int W) const { return weights_->arch.tokens(H, W); }
  // Floats forward() writes: B * T * D.
  size_t outputSize(int B, int H, int W) const {
    return static_cast<size_t>(B) * tokens(H, W) * static_cast<size_t>(weights_->arch.embedDim);
  }

  // rgb: B*H*W*3 bytes; out: outputSize(B, H, W) floats. Serialised per instance.
  ForwardResult forward(const uint8_t* rgb, int B, int H, int W, float* out);

  // What the pipeline stores: only some token rows (the tissue patches a region owns), in BF16.
  // rows: nRows indices in [0, B*T) of forward()'s output rows (image b's token t is b*T + t);
  // out: nRows * D values, row i = BF16 of output row rows[i]. Same values as forward() followed
  // by a gather and engine/bf16.h's rounding, bit for bit. colSums: D doubles, the column sums
  // of out (row order; the slide's mean comes from these without reading the rows back).
  // Throws bad_input for a row out of range.
  ForwardResult forwardRowsBf16(const uint8_t* rgb, int B, int H, int W, const int32_t* rows,
                                size_t nRows, uint16_t* out, double* colSums);

  // Token dropping (see KeptPatches). Checks the selection (bad_input naming the first problem)
  // and returns the output layout; forwardKept writes layout.rows() x D floats (allocate with
  // keptLayout() first), forwardKeptRowsBf16 the given rows of that output, as forwardRowsBf16.
  // ForwardResult.tokens is the longest image's token count.
  KeptLayout keptLayout(int B, int H, int W, const KeptPatches& kept) const;
  ForwardResult forwardKept(const uint8_t* rgb, int B, int H, int W, const KeptPatches& kept, float* out);
  ForwardResult forwardKeptRowsBf16(const uint8_t* rgb, int B, int H, int W, const KeptPatches& kept,
                                    const int32_t* rows, size_t nRows, uint16_t* out, double* colSums);

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

 private:
  Engine(std::shared_ptr<const Weights> w, Device device);
  const PosEmbedView& posEmbedFor(int gh, int gw);  // caller holds mu_
  // The part forward() and forwardRowsBf16() share once their arguments are checked: lock, pos
  // embed, time the backend call run(pos), turn bad_alloc into out_of_memory.
  template <typename Run>
  ForwardResult timedForward(int B, int H, int W, size_t T, Run run);

  std::shared_ptr<const Weights> weights_;
  Device device_;
  std::unique_ptr<Backend> backend_;
  std::mutex mu_;
  struct CachedPos {
    std::vector<float> data;
    PosEmbedView view;
  };
  std::map<std::pair<int, int>, CachedPos> posCache_;
};

}  // namespace flashslide
