// flashslide engine: ModelConfig parsing and architecture inference/validation.
// See vit_config.h for the tensor naming and what is derived vs. configured.
#include "vit_config.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "error.h"
#include "json.h"

namespace flashslide {

std::string shapeToString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// ---------------------------------------------------------------- ModelConfig

namespace {

[[noreturn]] void badConfig(const std::string& src, const std::string& what) {
  throw Error("bad_config", src + ": " + what);
}

int getInt(const json::Value& v, const std::string& key, const std::string& src) {
  if (v.kind != json::Value::Kind::Number || !v.isInt || v.i64 < 0 || v.i64 > (1 << 30))
    badConfig(src, "\"" + key + "\" must be a non-negative integer, got " + v.kindName());
  return static_cast<int>(v.i64);
}

bool getBool(const json::Value& v, const std::string& key, const std::string& src) {
  if (v.kind != json::Value::Kind::Bool) badConfig(src, "\"" + key + "\" must be true or false");
  return v.b;
}

void getTriple(const json::Value& v, const std::string& key, const std::string& src, float out[3]) {
  if (v.kind != json::Value::Kind::Array || v.arr.size() != 3)
    badConfig(src, "\"" + key + "\" must be an array of 3 numbers (R, G, B)");
  for (int i = 0; i < 3; ++i) {
    if (v.arr[i].kind != json::Value::Kind::Number)
      badConfig(src, "\"" + key + "\" must be an array of 3 numbers (R, G, B)");
    out[i] = static_cast<float>(v.arr[i].num);
  }
}

}  // namespace

ModelConfig ModelConfig::fromJson(const std::string& text, const std::string& src) {
  json::Value root;
  try {
    root = json::parse(text);
  } catch (const std::exception& e) {
    badConfig(src, std::string("not valid JSON: ") + e.what());
  }
  if (root.kind != json::Value::Kind::Object) badConfig(src, "top level must be a JSON object");
  ModelConfig c;
  std::optional<bool> swiglu;
  for (const auto& kv : root.obj) {
    const std::string& k = kv.first;
    const json::Value& v = kv.second;
    if (k == "num_heads") c.numHeads = getInt(v, k, src);
    else if (k == "patch_size") c.patchSize = getInt(v, k, src);
    else if (k == "embed_dim") c.embedDim = getInt(v, k, src);
    else if (k == "depth") c.depth = getInt(v, k, src);
    else if (k == "reg_tokens") c.regTokens = getInt(v, k, src);
    else if (k == "no_embed_class") c.noEmbedClass = getBool(v, k, src);
    else if (k == "swiglu") swiglu = getBool(v, k, src);
    else if (k == "mean") getTriple(v, k, src, c.mean);
    else if (k == "std") getTriple(v, k, src, c.std);
    else if (k == "layer_norm_eps" || k == "norm_eps") {
      if (v.kind != json::Value::Kind::Number || !(v.num > 0))
        badConfig(src, "\"" + k + "\" must be a positive number");
      c.layerNormEps = v.num;
    } else if (k == "mlp_act") {
      if (v.kind != json::Value::Kind::String) badConfig(src, "\"mlp_act\" must be a string");
      if (v.str == "gelu") c.mlp = MlpKind::Gelu;
      else if (v.str == "silu" || v.str == "swiglu") c.mlp = MlpKind::SwiGLU;
      else
        throw Error("unsupported_arch", src + ": mlp_act \"" + v.str +
                                            "\" is not supported (supported: \"gelu\" = exact-erf "
                                            "GELU MLP, \"silu\"/\"swiglu\" = timm SwiGLUPacked)");
    } else if (k == "qk_norm" || k == "pre_norm" || k == "fc_norm_pre") {
      if (v.kind == json::Value::Kind::Bool && v.b)
        throw Error("unsupported_arch", src + ": \"" + k + "\": true is not supported by this engine");
    } else if (k == "qkv_bias" || k == "proj_bias") {
      if (v.kind == json::Value::Kind::Bool && !v.b)
        throw Error("unsupported_arch", src + ": \"" + k + "\": false is not supported (the engine "
                                              "expects biases on the attention linears)");
    }
  }
  if (swiglu) {
    MlpKind s = *swiglu ? MlpKind::SwiGLU : MlpKind::Gelu;
    if (c.mlp && *c.mlp != s) badConfig(src, "\"swiglu\" and \"mlp_act\" contradict each other");
    c.mlp = s;
  }
  for (int i = 0; i < 3; ++i)
    if (!(c.std[i] > 0)) badConfig(src, "\"std\" entries must be positive");
  return c;
}

ModelConfig ModelConfig::fromJsonFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("bad_config", path + ": cannot open model config (check the path)");
  std::stringstream ss;
  ss << f.rdbuf();
  return fromJson(ss.str(), path);
}

// ---------------------------------------------------------------- ModelArch

size_t ModelArch::tokens(int H, int W) const {
  if (H <= 0 || W <= 0 || H % patchSize != 0 || W % patchSize != 0) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "image size %dx%d (HxW) is not a positive multiple of the patch size %d; crop or "
                  "pad tiles to e.g. %dx%d",
                  H, W, patchSize, H >= patchSize ? (H / patchSize) * patchSize : patchSize,
                  W >= patchSize ? (W / patchSize) * patchSize : patchSize);
    throw Error("bad_input", buf);
  }
  return static_cast<size_t>(numPrefixTokens) +
         static_cast<size_t>(H / patchSize) * static_cast<size_t>(W / patchSize);
}

std::string ModelArch::describe() const {
  std::ostringstream o;
  o << "ViT D=" << embedDim << " depth=" << depth << " heads=" << numHeads << " (head_dim "
    << headDim << ") patch=" << patchSize << " mlp="
    << (mlp == MlpKind::SwiGLU ? "swiglu(fc1 " + std::to_string(fc1Out) + " -> " +
                                     std::to_string(mlpHidden) + ")"
                               : "gelu(" + std::to_string(mlpHidden) + ")")
    << " prefix=" << (hasClsToken ? "cls" : "") << (hasClsToken && numRegTokens ? "+" : "")
    << (numRegTokens ? std::to_string(numRegTokens) + " reg" : "")
    << (numPrefixTokens == 0 ? "none" : "") << " pos_embed=" << posGridH << "x" << posGridW
    << (noEmbedClass ? " (patches only)" : " (incl. prefix)")
    << " layer_scale=" << (layerScale ? "yes" : "no") << " ln_eps=" << layerNormEps
    << " params=" << (numParams / 1e6) << "M";
  return o.str();
}

namespace {

bool isPerfectSquare(int64_t n, int64_t* root) {
  if (n <= 0) return false;
  int64_t r = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  while (r * r > n) --r;
  while ((r + 1) * (r + 1) <= n) ++r;
  *root = r;
  return r * r == n;
}

const char* kBlockParts[] = {"norm1.weight",    "norm1.bias",     "attn.qkv.weight",
                             "attn.qkv.bias",   "attn.proj.weight", "attn.proj.bias",
                             "norm2.weight",    "norm2.bias",     "mlp.fc1.weight",
                             "mlp.fc1.bias",    "mlp.fc2.weight", "mlp.fc2.bias"};

}  // namespace

std::vector<std::string> requiredTensorNames(const ModelArch& a) {
  std::vector<std::string> n = {"patch_embed.proj.weight", "patch_embed.proj.bias", "pos_embed",
                                "norm.weight", "norm.bias"};
  if (a.hasClsToken) n.push_back("cls_token");
  if (a.numRegTokens) n.push_back("reg_token");
  for (int i = 0; i < a.depth; ++i) {
    std::string p = "blocks." + std::to_string(i) + ".";
    for (const char* part : kBlockParts) n.push_back(p + part);
    if (a.layerScale) {
      n.push_back(p + "ls1.gamma");
      n.push_back(p + "ls2.gamma");
    }
  }
  return n;
}

ModelArch inferArch(const ShapeMap& shapes, const ModelConfig& cfg, const std::string& src) {
  auto find = [&](const std::string& name) -> const std::vector<int64_t>* {
    auto it = shapes.find(name);
    return it == shapes.end() ? nullptr : &it->second;
  };
  auto need = [&](const std::string& name) -> const std::vector<int64_t>& {
    const auto* s = find(name);
    if (!s) {
      std::string hint;
      // A common cause: a wrapper prefix such as "model." or "backbone." on every name.
      for (const auto& kv : shapes) {
        const std::string& k = kv.first;
        if (k.size() > name.size() && k.compare(k.size() - name.size(), name.size(), name) == 0 &&
            k[k.size() - name.size() - 1] == '.') {
          hint = " (found \"" + k + "\": the checkpoint's names carry the prefix \"" +
                 k.substr(0, k.size() - name.size()) + "\"; strip it when converting)";
          break;
        }
      }
      throw Error("missing_tensor", src + ": missing tensor \"" + name + "\"" + hint +
                                        " (is this a timm VisionTransformer checkpoint?)");
    }
    return *s;
  };
  auto expect = [&](const std::string& name, const std::vector<int64_t>& want, const char* why) {
    const auto& got = need(name);
    if (got != want)
      throw Error("shape_mismatch", src + ": tensor \"" + name + "\" has shape " + shapeToString(got) +
                                        " but the model needs " + shapeToString(want) + " (" + why + ")");
  };

  ModelArch a;
  // Patch embedding fixes D and p.
  const auto& pw = need("patch_embed.proj.weight");
  if (pw.size() != 4 || pw[1] != 3 || pw[2] != pw[3] || pw[0] <= 0 || pw[2] <= 0)
    throw Error("shape_mismatch", src + ": tensor \"patch_embed.proj.weight\" has shape " +
                                      shapeToString(pw) +
                                      " but the model needs [D, 3, p, p] (square RGB patch conv)");
  a.embedDim = static_cast<int>(pw[0]);
  a.patchSize = static_cast<int>(pw[2]);
  const int64_t D = a.embedDim;
  if (cfg.patchSize && *cfg.patchSize != a.patchSize)
    throw Error("bad_config", src + ": config says patch_size " + std::to_string(*cfg.patchSize) +
                                  " but patch_embed.proj.weight " + shapeToString(pw) +
                                  " is a " + std::to_string(a.patchSize) + "x" +
                                  std::to_string(a.patchSize) + " patch conv");
  if (cfg.embedDim && *cfg.embedDim != a.embedDim)
    throw Error("bad_config", src + ": config says embed_dim " + std::to_string(*cfg.embedDim) +
                                  " but the weights have D = " + std::to_string(a.embedDim));
  std::string dWhy = "embed dim " + std::to_string(D) + " from patch_embed.proj.weight";
  expect("patch_embed.proj.bias", {D}, dWhy.c_str());

  // Heads come only from config.
  if (cfg.numHeads <= 0)
    throw Error("bad_config", src + ": num_heads is not set; the number of attention heads cannot "
                                  "be derived from the weights, set \"num_heads\" in the model "
                                  "config (e.g. 16 for UNI, 24 for UNI2-h/H-optimus-0)");
  if (D % cfg.numHeads != 0)
    throw Error("bad_config", src + ": num_heads " + std::to_string(cfg.numHeads) +
                                  " does not divide the embed dim " + std::to_string(D));
  a.numHeads = cfg.numHeads;
  a.headDim = static_cast<int>(D / cfg.numHeads);

  // Prefix tokens.
  if (find("cls_token")) {
    expect("cls_token", {1, 1, D}, dWhy.c_str());
    a.hasClsToken = true;
  }
  if (const auto* r = find("reg_token")) {
    if (r->size() != 3 || (*r)[0] != 1 || (*r)[2] != D || (*r)[1] < 1)
      throw Error("shape_mismatch", src + ": tensor \"reg_token\" has shape " + shapeToString(*r) +
                                        " but the model needs [1, R, " + std::to_string(D) + "]");
    a.numRegTokens = static_cast<int>((*r)[1]);
  }
  if (cfg.regTokens && *cfg.regTokens != a.numRegTokens)
    throw Error("bad_config", src + ": config says reg_tokens " + std::to_string(*cfg.regTokens) +
                                  " but the checkpoint has " + std::to_string(a.numRegTokens) +
                                  (a.numRegTokens ? "" : " (no reg_token tensor)"));
  a.numPrefixTokens = (a.hasClsToken ? 1 : 0) + a.numRegTokens;

  // Position embedding: with no_embed_class=False it carries one entry per prefix token
  // in front of the patch grid; with True, only the grid.
  const auto& pe = need("pos_embed");
  if (pe.size() != 3 || pe[0] != 1 || pe[2] != D)
    throw Error("shape_mismatch", src + ": tensor \"pos_embed\" has shape " + shapeToString(pe) +
                                      " but the model needs [1, N, " + std::to_string(D) + "]");
  const int64_t N = pe[1];
  int64_t rootAll = 0, rootPatch = 0;
  bool sqAll = isPerfectSquare(N, &rootAll);
  bool sqPatch = a.numPrefixTokens > 0 && isPerfectSquare(N - a.numPrefixTokens, &rootPatch);
  bool noEmbed;
  if (cfg.noEmbedClass) {
    noEmbed = *cfg.noEmbedClass;
    if ((noEmbed && !sqAll) || (!noEmbed && !(sqPatch || (a.numPrefixTokens == 0 && sqAll))))
      throw Error("shape_mismatch",
                  src + ": pos_embed has " + std::to_string(N) + " entries; with no_embed_class=" +
                      (noEmbed ? "true" : "false") + " and " + std::to_string(a.numPrefixTokens) +
                      " prefix tokens the patch part (" +
                      std::to_string(noEmbed ? N : N - a.numPrefixTokens) +
                      ") is not a square grid -- check no_embed_class in the config");
  } else if (a.numPrefixTokens == 0) {
    noEmbed = true;  // equivalent either way
    if (!sqAll)
      throw Error("shape_mismatch", src + ": pos_embed has " + std::to_string(N) +
                                        " entries, not a square patch grid");
  } else if (sqAll && sqPatch) {
    throw Error("bad_config", src + ": pos_embed length " + std::to_string(N) +
                                  " fits both no_embed_class=true and false; set \"no_embed_class\" "
                                  "in the model config");
  } else if (sqAll || sqPatch) {
    noEmbed = sqAll;
  } else {
    throw Error("shape_mismatch", src + ": pos_embed has " + std::to_string(N) + " entries, which is "
                                      "neither a square grid nor " +
                                      std::to_string(a.numPrefixTokens) +
                                      " prefix entries + a square grid");
  }
  a.noEmbedClass = noEmbed;
  a.posEmbedPrefix = noEmbed ? 0 : a.numPrefixTokens;
  int64_t g = noEmbed ? rootAll : (a.numPrefixTokens == 0 ? rootAll : rootPatch);
  a.posGridH = a.posGridW = static_cast<int>(g);

  // Depth: blocks.0 .. blocks.L-1, with no gaps.
  std::set<int> blockIdx;
  for (const auto& kv : shapes) {
    const std::string& k = kv.first;
    if (k.compare(0, 7, "blocks.") == 0) {
      size_t dot = k.find('.', 7);
      std::string num = k.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
      bool digits = !num.empty() && num.size() < 7 &&
                    num.find_first_not_of("0123456789") == std::string::npos;
      if (!digits)
        throw Error("unsupported_arch", src + ": unexpected tensor \"" + k +
                                            "\" (blocks must be named blocks.<i>.*; chunked "
                                            "DINOv2 checkpoints need converting to timm names)");
      blockIdx.insert(std::stoi(num));
    }
  }
  if (blockIdx.empty())
    throw Error("missing_tensor", src + ": missing tensor \"blocks.0.norm1.weight\" (no transformer "
                                      "blocks found)");
  a.depth = *blockIdx.rbegin() + 1;
  if (cfg.depth && *cfg.depth != a.depth)
    throw Error("bad_config", src + ": config says depth " + std::to_string(*cfg.depth) +
                                  " but the checkpoint has blocks 0.." + std::to_string(a.depth - 1));

  // MLP kind/width from block 0, then every block must match.
  const auto& f1 = need("blocks.0.mlp.fc1.weight");
  const auto& f2 = need("blocks.0.mlp.fc2.weight");
  if (f1.size() != 2 || f1[1] != D || f1[0] <= 0)
    throw Error("shape_mismatch", src + ": tensor \"blocks.0.mlp.fc1.weight\" has shape " +
                                      shapeToString(f1) + " but the model needs [F, " +
                                      std::to_string(D) + "]");
  if (f2.size() != 2 || f2[0] != D || f2[1] <= 0)
    throw Error("shape_mismatch", src + ": tensor \"blocks.0.mlp.fc2.weight\" has shape " +
                                      shapeToString(f2) + " but the model needs [" +
                                      std::to_string(D) + ", hidden]");
  if (f1[0] == f2[1]) a.mlp = MlpKind::Gelu;
  else if (f1[0] == 2 * f2[1]) a.mlp = MlpKind::SwiGLU;
  else
    throw Error("shape_mismatch", src + ": blocks.0.mlp.fc1.weight " + shapeToString(f1) +
                                      " and blocks.0.mlp.fc2.weight " + shapeToString(f2) +
                                      " fit neither a GELU MLP (fc1 rows == fc2 cols) nor a packed "
                                      "SwiGLU (fc1 rows == 2 * fc2 cols)");
  if (cfg.mlp && *cfg.mlp != a.mlp)
    throw Error("bad_config", src + ": config says mlp_act " +
                                  (*cfg.mlp == MlpKind::Gelu ? "gelu" : "swiglu/silu") +
                                  " but the fc1/fc2 shapes " + shapeToString(f1) + " / " +
                                  shapeToString(f2) + " are a " +
                                  (a.mlp == MlpKind::Gelu ? "GELU MLP" : "packed SwiGLU MLP"));
  a.fc1Out = static_cast<int>(f1[0]);
  a.mlpHidden = static_cast<int>(f2[1]);
  a.layerScale = find("blocks.0.ls1.gamma") != nullptr;

  const int64_t F = a.fc1Out, Hm = a.mlpHidden;
  for (int i = 0; i < a.depth; ++i) {
    std::string p = "blocks." + std::to_string(i) + ".";
    expect(p + "norm1.weight", {D}, dWhy.c_str());
    expect(p + "norm1.bias", {D}, dWhy.c_str());
    expect(p + "attn.qkv.weight", {3 * D, D}, dWhy.c_str());
    expect(p + "attn.qkv.bias", {3 * D}, dWhy.c_str());
    expect(p + "attn.proj.weight", {D, D}, dWhy.c_str());
    expect(p + "attn.proj.bias", {D}, dWhy.c_str());
    expect(p + "norm2.weight", {D}, dWhy.c_str());
    expect(p + "norm2.bias", {D}, dWhy.c_str());
    expect(p + "mlp.fc1.weight", {F, D}, "MLP width from blocks.0.mlp.fc1.weight");
    expect(p + "mlp.fc1.bias", {F}, "MLP width from blocks.0.mlp.fc1.weight");
    expect(p + "mlp.fc2.weight", {D, Hm}, "MLP width from blocks.0.mlp.fc2.weight");
    expect(p + "mlp.fc2.bias", {D}, dWhy.c_str());
    for (const char* ls : {"ls1.gamma", "ls2.gamma"}) {
      if (a.layerScale) expect(p + ls, {D}, "layer scale present in blocks.0");
      else if (find(p + ls))
        throw Error("shape_mismatch", src + ": tensor \"" + p + ls + "\" present but blocks.0 has "
                                          "no layer scale (inconsistent checkpoint)");
    }
  }
  expect("norm.weight", {D}, dWhy.c_str());
  expect("norm.bias", {D}, dWhy.c_str());

  // Anything else must be a known head we can drop; otherwise the checkpoint has a
  // layer we would silently skip.
  std::vector<std::string> req = requiredTensorNames(a);
  std::set<std::string> reqSet(req.begin(), req.end());
  std::vector<std::string> unknown;
  for (const auto& kv : shapes) {
    const std::string& k = kv.first;
    if (reqSet.count(k)) continue;
    if (k.compare(0, 5, "head.") == 0 || k.compare(0, 8, "fc_norm.") == 0 || k == "mask_token" ||
        k.compare(0, 10, "attn_pool.") == 0)
      continue;
    unknown.push_back(k);
  }
  if (!unknown.empty()) {
    std::string list;
    for (size_t i = 0; i < unknown.size() && i < 5; ++i) list += (i ? ", " : "") + unknown[i];
    if (unknown.size() > 5) list += ", ... (" + std::to_string(unknown.size()) + " in total)";
    throw Error("unsupported_arch", src + ": the checkpoint has tensors this engine does not "
                                          "implement: " + list +
                                          " (e.g. qk-norm, pre-norm or a different block layout); "
                                          "refusing to run rather than compute wrong features");
  }

  int64_t params = 0;
  for (const auto& n : req) {
    int64_t c = 1;
    for (int64_t d : shapes.at(n)) c *= d;
    params += c;
  }
  a.numParams = params;
  for (int i = 0; i < 3; ++i) {
    a.mean[i] = cfg.mean[i];
    a.std[i] = cfg.std[i];
  }
  a.layerNormEps = cfg.layerNormEps;
  return a;
}

}  // namespace flashslide
