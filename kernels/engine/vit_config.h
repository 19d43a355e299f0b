// flashslide engine: ViT model description.
//
// ModelConfig holds what a user/config file says; ModelArch is the resolved, validated
// description the backends run. Everything that can be read off tensor shapes is
// derived from the checkpoint (embed dim, depth, MLP width, register tokens, layer
// scale, patch size, SwiGLU vs GELU, the pos-embed grid); the config only supplies
// what shapes cannot tell (number of heads, normalisation constants, LayerNorm eps)
// and may *confirm* derived values -- a contradiction is an error rather than a
// silent override, because running a checkpoint with the wrong head count or
// activation produces plausible-looking garbage features.
//
// Tensor names follow timm's VisionTransformer (engine-facts.md 5.2):
//   cls_token [1,1,D]?  reg_token [1,R,D]?  pos_embed [1,N,D]
//   patch_embed.proj.weight [D,3,p,p]  patch_embed.proj.bias [D]
//   blocks.i.{norm1,norm2}.{weight,bias} [D]
//   blocks.i.attn.qkv.weight [3D,D] .bias [3D]   blocks.i.attn.proj.weight [D,D] .bias [D]
//   blocks.i.ls1.gamma / ls2.gamma [D]?          (layer scale, all blocks or none)
//   blocks.i.mlp.fc1.weight [F,D] .bias [F]      blocks.i.mlp.fc2.weight [D,Hm] .bias [D]
//     GELU: F == Hm;  SwiGLUPacked: F == 2*Hm, act = silu(fc1[:Hm]) * fc1[Hm:]
//   norm.{weight,bias} [D]
// Heads (head.*, fc_norm.*) and mask_token are ignored; any other tensor is an
// unsupported_arch error, since it would mean a layer we do not implement.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace flashslide {

enum class MlpKind { Gelu, SwiGLU };

struct ModelConfig {
  // Required: heads cannot be derived from shapes (D = heads * head_dim for any split).
  int numHeads = 0;
  // Optional confirmations of values derived from the weights.
  std::optional<int> patchSize;      // from patch_embed.proj.weight [D,3,p,p]
  std::optional<MlpKind> mlp;        // from fc1/fc2 shapes
  std::optional<bool> noEmbedClass;  // from pos_embed length (asked for when ambiguous)
  std::optional<int> embedDim, depth, regTokens;  // pure cross-checks
  // Input normalisation: x = (u8/255 - mean) / std, per RGB channel. ImageNet defaults.
  float mean[3] = {0.485f, 0.456f, 0.406f};
  float std[3] = {0.229f, 0.224f, 0.225f};
  double layerNormEps = 1e-6;  // timm ViT default (partial(nn.LayerNorm, eps=1e-6))

  // Accepts the timm-kwargs style JSON the fixtures use: num_heads, patch_size,
  // mlp_act ("gelu" | "silu" | "swiglu"), swiglu (bool), no_embed_class, embed_dim,
  // depth, reg_tokens, mean, std, layer_norm_eps (alias norm_eps). Unknown keys are
  // ignored; qk_norm/pre_norm/class_token=false-with-no-weights style options that
  // change the math are rejected. Throws Error("bad_config").
  static ModelConfig fromJson(const std::string& text, const std::string& sourceName = "config");
  static ModelConfig fromJsonFile(const std::string& path);
};

struct ModelArch {
  int embedDim = 0;       // D
  int depth = 0;          // L
  int numHeads = 0;       // H
  int headDim = 0;        // D / H
  int mlpHidden = 0;      // width entering fc2 (Hm)
  int fc1Out = 0;         // Hm (GELU) or 2*Hm (SwiGLU)
  MlpKind mlp = MlpKind::Gelu;
  int patchSize = 0;      // p
  bool hasClsToken = false;
  int numRegTokens = 0;   // R
  int numPrefixTokens = 0;  // (cls ? 1 : 0) + R
  bool layerScale = false;
  bool noEmbedClass = false;
  int posEmbedPrefix = 0;   // rows at the front of pos_embed for prefix tokens (0 if noEmbedClass)
  int posGridH = 0, posGridW = 0;  // patch grid the checkpoint's pos_embed was trained at
  float mean[3] = {0, 0, 0};
  float std[3] = {1, 1, 1};
  double layerNormEps = 1e-6;
  int64_t numParams = 0;    // parameters actually used by forward_features

  // T = prefix + (H/p)*(W/p). Throws Error("bad_input") if H, W are not positive
  // multiples of p.
  size_t tokens(int H, int W) const;
  std::string describe() const;
};

using ShapeMap = std::map<std::string, std::vector<int64_t>>;

// Derives and validates the architecture from tensor shapes + config. `source` names
// the checkpoint in messages. Throws Error with codes missing_tensor, shape_mismatch,
// bad_config, unsupported_arch.
ModelArch inferArch(const ShapeMap& shapes, const ModelConfig& cfg, const std::string& source);

// Every tensor name forward_features reads for `arch` (used by loaders).
std::vector<std::string> requiredTensorNames(const ModelArch& arch);

std::string shapeToString(const std::vector<int64_t>& shape);

}  // namespace flashslide
