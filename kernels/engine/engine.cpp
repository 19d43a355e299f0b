// flashslide engine: Engine front end -- argument validation, pos-embed cache, dispatch
// to the backend. No math here beyond the (cached) pos-embed resample.
#include "engine.h"

#include <chrono>
#include <new>

#include "pos_embed.h"

namespace flashslide {

namespace {
// Tile sizes in a slide pipeline are few; bound the cache anyway so a caller feeding
// arbitrary sizes cannot grow it without limit.
constexpr size_t kMaxCachedGrids = 16;
}  // namespace

Engine::Engine(std::shared_ptr<const Weights> w, Device device)
    : weights_(std::move(w)), device_(device) {
  if (device == Device::Cuda) {
#ifdef FLASHSLIDE_HAVE_CUDA
    backend_ = makeCudaBackend(weights_);
    return;
#else
    throw Error("unsupported_device", "CUDA backend is not built into this library yet; use the CPU "
                                      "device");
#endif
  }
  backend_ = makeCpuBackend(weights_);
}

std::unique_ptr<Engine> Engine::fromWeights(Weights weights, Device device) {
  return std::unique_ptr<Engine>(
      new Engine(std::make_shared<const Weights>(std::move(weights)), device));
}

std::unique_ptr<Engine> Engine::load(const std::string& weightsPath, const ModelConfig& cfg,
                                     Device device) {
  SafetensorsReader file(weightsPath);
  return fromWeights(loadWeights(file, cfg), device);
}

std::unique_ptr<Engine> Engine::fromTensors(TensorMap tensors, const ModelConfig& cfg,
                                            Device device, const std::string& sourceName) {
  return fromWeights(buildWeights(std::move(tensors), cfg, sourceName), device);
}

const PosEmbedView& Engine::posEmbedFor(int gh, int gw) {
  auto key = std::make_pair(gh, gw);
  auto it = posCache_.find(key);
  if (it != posCache_.end()) return it->second.view;
  if (posCache_.size() >= kMaxCachedGrids) posCache_.clear();
  const ModelArch& a = weights_->arch;
  CachedPos c;
  c.data = resamplePosEmbed(weights_->posEmbed.data(), a.posEmbedPrefix, a.posGridH, a.posGridW,
                            a.embedDim, gh, gw);
  c.view.gridH = gh;
  c.view.gridW = gw;
  c.view.prefixRows = a.posEmbedPrefix;
  auto& slot = posCache_[key] = std::move(c);
  slot.view.data = slot.data.data();  // after the move: vector storage is stable from here
  return slot.view;
}

ForwardResult Engine::forward(const uint8_t* rgb, int B, int H, int W, float* out) {
  const ModelArch& a = weights_->arch;
  if (B <= 0) throw Error("bad_input", "batch size must be >= 1, got " + std::to_string(B));
  if (!rgb || !out) throw Error("bad_input", "forward: null input or output buffer");
  const size_t T = tokens(H, W);  // throws bad_input for sizes that are not multiples of p
  std::lock_guard<std::mutex> lock(mu_);
  ForwardResult r;
  r.batch = B;
  r.tokens = static_cast<int>(T);
  r.dim = a.embedDim;
  r.gridH = H / a.patchSize;
  r.gridW = W / a.patchSize;
  auto t0 = std::chrono::steady_clock::now();
  try {
    const PosEmbedView& pos = posEmbedFor(r.gridH, r.gridW);
    backend_->forward(rgb, B, H, W, pos, out);
  } catch (const std::bad_alloc&) {
    throw Error("out_of_memory", "out of memory running a " + std::to_string(B) + "x" +
                                     std::to_string(H) + "x" + std::to_string(W) +
                                     " forward (" + std::to_string(T) +
                                     " tokens per image); use a smaller batch or tile");
  }
  r.millis = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace flashslide
