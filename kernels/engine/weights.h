// flashslide engine: model weights as plain float32 host arrays.
//
// Backend-neutral on purpose: the CPU backend reads these directly, a CUDA backend
// uploads (and may convert) them once. All matrices keep PyTorch's nn.Linear layout
// [out_features, in_features] row-major, i.e. y = x W^T + b, which maps to a single
// sgemm with transB. The patch conv weight [D, 3, p, p] is the same thing viewed as
// [D, 3*p*p] against im2col rows ordered (channel, ky, kx).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "safetensors.h"
#include "vit_config.h"

namespace flashslide {

struct BlockWeights {
  std::vector<float> norm1W, norm1B;  // [D]
  std::vector<float> qkvW, qkvB;      // [3D, D], [3D]; rows q | k | v, each heads x head_dim
  std::vector<float> projW, projB;    // [D, D], [D]
  std::vector<float> ls1, ls2;        // [D] or empty (no layer scale)
  std::vector<float> norm2W, norm2B;  // [D]
  std::vector<float> fc1W, fc1B;      // [F, D], [F]
  std::vector<float> fc2W, fc2B;      // [D, Hm], [D]
};

struct Weights {
  ModelArch arch;
  std::string source;                   // file name or "<memory>", for messages
  std::vector<float> clsToken;          // [D] or empty
  std::vector<float> regToken;          // [R*D] or empty
  std::vector<float> posEmbed;          // [posEmbedPrefix + gh*gw, D] as in the checkpoint
  std::vector<float> patchW, patchB;    // [D, 3*p*p], [D]
  std::vector<float> normW, normB;      // [D]
  std::vector<BlockWeights> blocks;     // depth entries

  size_t bytes() const;
};

// What the host still needs once a device backend holds a copy of the weights: the arch, the
// source name, the prefix tokens and the checkpoint's position embedding (resampled on the host
// for each grid). The per-layer tensors and the patch projection are left out: for a ViT-L they
// are 1.2 GB of float32 that the process would otherwise keep for nothing.
Weights hostPart(const Weights& w);

// Name -> float tensor; used to build a model in memory (bench, tests, converters).
using TensorMap = std::map<std::string, TensorF32>;

// Validates shapes (inferArch) before reading any tensor data, then loads and converts
// F32/F16/BF16 to float32. Errors name the file and the tensor.
Weights loadWeights(const SafetensorsReader& file, const ModelConfig& cfg);
// Same validation for tensors already in memory; consumes `tensors`.
Weights buildWeights(TensorMap tensors, const ModelConfig& cfg, const std::string& source);

}  // namespace flashslide
