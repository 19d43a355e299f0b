// flashslide engine: loading/validating ViT weights into the backend-neutral Weights.
#include "weights.h"

#include <cmath>
#include <functional>
#include <new>

#include "error.h"

namespace flashslide {

size_t Weights::bytes() const {
  size_t n = clsToken.size() + regToken.size() + posEmbed.size() + patchW.size() + patchB.size() +
             normW.size() + normB.size();
  for (const auto& b : blocks)
    for (const auto* v : {&b.norm1W, &b.norm1B, &b.qkvW, &b.qkvB, &b.projW, &b.projB, &b.ls1,
                          &b.ls2, &b.norm2W, &b.norm2B, &b.fc1W, &b.fc1B, &b.fc2W, &b.fc2B})
      n += v->size();
  return n * sizeof(float);
}

Weights hostPart(const Weights& w) {
  Weights h;
  h.arch = w.arch;
  h.source = w.source;
  h.clsToken = w.clsToken;
  h.regToken = w.regToken;
  h.posEmbed = w.posEmbed;
  return h;
}

namespace {

// Fills a Weights from `load(name)`, which returns the float data of a tensor whose
// shape inferArch already validated. Every value is checked to be finite as it arrives (one pass
// over data already in cache): a NaN or Inf in a checkpoint would otherwise be found only after
// computing every region of a slide, as NaN scores.
Weights assemble(const ModelArch& a, const std::string& source,
                 const std::function<std::vector<float>(const std::string&)>& load) {
  auto fetch = [&](const std::string& name) {
    std::vector<float> v = load(name);
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i]))
        throw Error("non_finite_weights", source + ": tensor \"" + name + "\" holds " +
                                              (std::isnan(v[i]) ? "NaN" : "an infinite value") +
                                              " at element " + std::to_string(i) +
                                              ": the checkpoint is damaged; export it again");
    return v;
  };
  Weights w;
  w.arch = a;
  w.source = source;
  try {
    if (a.hasClsToken) w.clsToken = fetch("cls_token");
    if (a.numRegTokens) w.regToken = fetch("reg_token");
    w.posEmbed = fetch("pos_embed");
    w.patchW = fetch("patch_embed.proj.weight");
    w.patchB = fetch("patch_embed.proj.bias");
    w.normW = fetch("norm.weight");
    w.normB = fetch("norm.bias");
    w.blocks.resize(a.depth);
    for (int i = 0; i < a.depth; ++i) {
      const std::string p = "blocks." + std::to_string(i) + ".";
      BlockWeights& b = w.blocks[i];
      b.norm1W = fetch(p + "norm1.weight");
      b.norm1B = fetch(p + "norm1.bias");
      b.qkvW = fetch(p + "attn.qkv.weight");
      b.qkvB = fetch(p + "attn.qkv.bias");
      b.projW = fetch(p + "attn.proj.weight");
      b.projB = fetch(p + "attn.proj.bias");
      b.norm2W = fetch(p + "norm2.weight");
      b.norm2B = fetch(p + "norm2.bias");
      b.fc1W = fetch(p + "mlp.fc1.weight");
      b.fc1B = fetch(p + "mlp.fc1.bias");
      b.fc2W = fetch(p + "mlp.fc2.weight");
      b.fc2B = fetch(p + "mlp.fc2.bias");
      if (a.layerScale) {
        b.ls1 = fetch(p + "ls1.gamma");
        b.ls2 = fetch(p + "ls2.gamma");
      }
    }
  } catch (const std::bad_alloc&) {
    throw Error("out_of_memory", source + ": out of memory while loading " +
                                     std::to_string(a.numParams * 4 / (1 << 20)) +
                                     " MiB of float32 weights");
  }
  return w;
}

}  // namespace

Weights loadWeights(const SafetensorsReader& file, const ModelConfig& cfg) {
  ShapeMap shapes;
  for (const auto& t : file.tensors()) shapes[t.name] = t.shape;
  const ModelArch a = inferArch(shapes, cfg, file.path());
  // Check dtypes of everything we need up front, so a bad file fails before we spend
  // seconds reading gigabytes.
  for (const auto& n : requiredTensorNames(a)) {
    const TensorInfo& t = file.get(n);
    if (!isFloatDtype(t.dtype))
      throw Error("unsupported_dtype", file.path() + ": tensor \"" + n + "\" has dtype " + t.dtype +
                                           "; only F32, F16 and BF16 weights are supported "
                                           "(re-export the checkpoint in one of those)");
  }
  return assemble(a, file.path(), [&](const std::string& n) { return file.readF32(n); });
}

Weights buildWeights(TensorMap tensors, const ModelConfig& cfg, const std::string& source) {
  ShapeMap shapes;
  for (const auto& kv : tensors) {
    int64_t numel = 1;
    for (int64_t d : kv.second.shape) numel *= d;
    if (numel != static_cast<int64_t>(kv.second.data.size()))
      throw Error("shape_mismatch", source + ": tensor \"" + kv.first + "\" has shape " +
                                        shapeToString(kv.second.shape) + " but " +
                                        std::to_string(kv.second.data.size()) + " values");
    shapes[kv.first] = kv.second.shape;
  }
  const ModelArch a = inferArch(shapes, cfg, source);
  return assemble(a, source, [&](const std::string& n) { return std::move(tensors.at(n).data); });
}

}  // namespace flashslide
