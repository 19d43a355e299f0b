// flashslide engine: Engine front end -- argument validation, pos-embed cache, dispatch
// to the backend. No math here beyond the (cached) pos-embed resample.
#include "engine.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <new>
#include <string>

#include "bf16.h"
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
    // The backend has uploaded the tensors (and dropped its own reference to them): release
    // the host copy too, keeping what posEmbedFor resamples.
    weights_ = std::make_shared<const Weights>(hostPart(*weights_));
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

template <typename Run>
ForwardResult Engine::timedForward(int B, int H, int W, size_t T, Run run) {
  const ModelArch& a = weights_->arch;
  std::lock_guard<std::mutex> lock(mu_);
  ForwardResult r;
  r.batch = B;
  r.tokens = static_cast<int>(T);
  r.dim = a.embedDim;
  r.gridH = H / a.patchSize;
  r.gridW = W / a.patchSize;
  auto t0 = std::chrono::steady_clock::now();
  try {
    run(posEmbedFor(r.gridH, r.gridW));
  } catch (const std::bad_alloc&) {
    throw Error("out_of_memory", "out of memory running a " + std::to_string(B) + "x" + std::to_string(H) + "x" +
                                     std::to_string(W) + " forward (" + std::to_string(T) +
                                     " tokens per image); use a smaller batch or tile");
  }
  r.millis = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

ForwardResult Engine::forward(const uint8_t* rgb, int B, int H, int W, float* out) {
  if (B <= 0) throw Error("bad_input", "batch size must be >= 1, got " + std::to_string(B));
  if (!rgb || !out) throw Error("bad_input", "forward: null input or output buffer");
  const size_t T = tokens(H, W);  // throws bad_input for sizes that are not multiples of p
  return timedForward(B, H, W, T, [&](const PosEmbedView& pos) { backend_->forward(rgb, B, H, W, pos, out); });
}

void gatherRowsBf16Host(const float* all, size_t D, const int32_t* rows, size_t nRows, uint16_t* out,
                        double* colSums) {
#pragma omp parallel for schedule(static) if (nRows * D >= (1u << 16))
  for (int64_t i = 0; i < static_cast<int64_t>(nRows); ++i) {
    const float* in = all + static_cast<size_t>(rows[i]) * D;
    uint16_t* o = out + static_cast<size_t>(i) * D;
    for (size_t j = 0; j < D; ++j) o[j] = toBf16(in[j]);
  }
  // Threads over columns, rows in order within a column: the same sums as one thread.
#pragma omp parallel for schedule(static) if (nRows * D >= (1u << 16))
  for (int64_t j = 0; j < static_cast<int64_t>(D); ++j) {
    double s = 0;
    for (size_t i = 0; i < nRows; ++i) s += fromBf16(out[i * D + static_cast<size_t>(j)]);
    colSums[j] = s;
  }
}

void Backend::forwardRowsBf16(const uint8_t* rgb, int B, int H, int W, const PosEmbedView& pos,
                              size_t T, size_t D, const int32_t* rows, size_t nRows, uint16_t* out,
                              double* colSums) {
  // new[] without (): no zero-fill of a buffer forward() overwrites anyway.
  std::unique_ptr<float[]> all(new float[static_cast<size_t>(B) * T * D]);
  forward(rgb, B, H, W, pos, all.get());
  gatherRowsBf16Host(all.get(), D, rows, nRows, out, colSums);
}

void Backend::forwardKeptRowsBf16(const uint8_t* rgb, int B, int H, int W, const PosEmbedView& pos,
                                  const KeptPatches& kept, const KeptLayout& layout, size_t D,
                                  const int32_t* rows, size_t nRows, uint16_t* out, double* colSums) {
  std::unique_ptr<float[]> all(new float[layout.rows() * D]);
  forwardKept(rgb, B, H, W, pos, kept, layout, all.get());
  gatherRowsBf16Host(all.get(), D, rows, nRows, out, colSums);
}

ForwardResult Engine::forwardRowsBf16(const uint8_t* rgb, int B, int H, int W, const int32_t* rows,
                                      size_t nRows, uint16_t* out, double* colSums) {
  if (B <= 0) throw Error("bad_input", "batch size must be >= 1, got " + std::to_string(B));
  if (!rgb || !colSums || (nRows > 0 && (!rows || !out))) throw Error("bad_input", "forwardRowsBf16: null input, rows, output or sums buffer");
  const size_t T = tokens(H, W);
  const int64_t total = static_cast<int64_t>(B) * static_cast<int64_t>(T);
  for (size_t i = 0; i < nRows; ++i) {
    if (rows[i] < 0 || rows[i] >= total) {
      throw Error("bad_input", "forwardRowsBf16: row " + std::to_string(rows[i]) + " (index " + std::to_string(i) +
                                   ") is outside the " + std::to_string(B) + "x" + std::to_string(T) + " output token rows");
    }
  }
  const size_t D = static_cast<size_t>(weights_->arch.embedDim);
  return timedForward(B, H, W, T, [&](const PosEmbedView& pos) {
    backend_->forwardRowsBf16(rgb, B, H, W, pos, T, D, rows, nRows, out, colSums);
  });
}

KeptLayout Engine::keptLayout(int B, int H, int W, const KeptPatches& kept) const {
  if (B <= 0) throw Error("bad_input", "batch size must be >= 1, got " + std::to_string(B));
  if (!kept.offsets || !kept.patches) throw Error("bad_input", "kept patches: null offsets or patch list");
  const ModelArch& a = weights_->arch;
  tokens(H, W);  // throws bad_input for sizes that are not multiples of p
  const int32_t np = (H / a.patchSize) * (W / a.patchSize);
  if (kept.offsets[0] != 0) throw Error("bad_input", "kept patches: offsets[0] must be 0");
  KeptLayout layout;
  layout.start.assign(static_cast<size_t>(B) + 1, 0);
  for (int b = 0; b < B; ++b) {
    const int32_t k0 = kept.offsets[b], k1 = kept.offsets[b + 1];
    if (k1 <= k0) throw Error("bad_input", "kept patches: image " + std::to_string(b) + " keeps no patch (drop the image instead)");
    for (int32_t i = k0; i < k1; ++i) {
      const int32_t p = kept.patches[i];
      if (p < 0 || p >= np || (i > k0 && p <= kept.patches[i - 1])) {
        throw Error("bad_input", "kept patches: image " + std::to_string(b) + "'s list must be strictly increasing patch indices in [0, " +
                                     std::to_string(np) + "), got " + std::to_string(p) + " at position " + std::to_string(i - k0));
      }
    }
    const size_t t = static_cast<size_t>(a.numPrefixTokens) + static_cast<size_t>(k1 - k0);
    layout.start[b + 1] = layout.start[b] + t;
    if (t > layout.maxTokens) layout.maxTokens = t;
  }
  return layout;
}

ForwardResult Engine::forwardKept(const uint8_t* rgb, int B, int H, int W, const KeptPatches& kept, float* out) {
  if (!rgb || !out) throw Error("bad_input", "forwardKept: null input or output buffer");
  const KeptLayout layout = keptLayout(B, H, W, kept);
  return timedForward(B, H, W, layout.maxTokens,
                      [&](const PosEmbedView& pos) { backend_->forwardKept(rgb, B, H, W, pos, kept, layout, out); });
}

ForwardResult Engine::forwardKeptRowsBf16(const uint8_t* rgb, int B, int H, int W, const KeptPatches& kept,
                                          const int32_t* rows, size_t nRows, uint16_t* out, double* colSums) {
  if (!rgb || !colSums || (nRows > 0 && (!rows || !out))) throw Error("bad_input", "forwardKeptRowsBf16: null input, rows, output or sums buffer");
  const KeptLayout layout = keptLayout(B, H, W, kept);
  const int64_t total = static_cast<int64_t>(layout.rows());
  for (size_t i = 0; i < nRows; ++i) {
    if (rows[i] < 0 || rows[i] >= total) {
      throw Error("bad_input", "forwardKeptRowsBf16: row " + std::to_string(rows[i]) + " (index " + std::to_string(i) +
                                   ") is outside the " + std::to_string(total) + " output token rows");
    }
  }
  const size_t D = static_cast<size_t>(weights_->arch.embedDim);
  return timedForward(B, H, W, layout.maxTokens, [&](const PosEmbedView& pos) {
    backend_->forwardKeptRowsBf16(rgb, B, H, W, pos, kept, layout, D, rows, nRows, out, colSums);
  });
}

}  // namespace flashslide
