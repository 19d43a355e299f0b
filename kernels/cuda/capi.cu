// flashslide CUDA backend: a small C API over device pointers, for the GPU benchmark.
//
// bench/gpu/bench.py loads build/libflashslide_cuda.so with ctypes and calls these with
// PyTorch tensors' data pointers and stream, so our kernels and PyTorch's are timed by the
// same code (CUDA events via triton.testing.do_bench) on the same stream, on the same data.
// Every function returns 0 on success and a negative value on error (message:
// fs_last_error()); nothing throws across the C boundary.
#include <cuda_runtime.h>

#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../engine/pos_embed.h"
#include "../engine/safetensors.h"
#include "cuda_backend.h"
#include "flash_attn.h"

using namespace flashslide;

namespace {

thread_local std::string g_lastError;

template <typename Fn>
int guarded(Fn&& fn) {
  try {
    fn();
    return 0;
  } catch (const Error& e) {
    g_lastError = "[" + e.code() + "] " + e.what();
  } catch (const std::exception& e) {
    g_lastError = e.what();
  }
  return -1;
}

struct VitHandle {
  std::shared_ptr<const Weights> weights;
  std::unique_ptr<cuda::CudaVit> vit;
  struct Pos {
    std::vector<float> data;
    PosEmbedView view;
  };
  std::map<std::pair<int, int>, Pos> pos;

  const PosEmbedView& posFor(int gh, int gw) {
    auto it = pos.find({gh, gw});
    if (it != pos.end()) return it->second.view;
    const ModelArch& a = weights->arch;
    Pos& p = pos[{gh, gw}];
    p.data = resamplePosEmbed(weights->posEmbed.data(), a.posEmbedPrefix, a.posGridH, a.posGridW, a.embedDim, gh, gw);
    p.view.gridH = gh;
    p.view.gridW = gw;
    p.view.prefixRows = a.posEmbedPrefix;
    p.view.data = p.data.data();
    return p.view;
  }
};

}  // namespace

extern "C" {

const char* fs_last_error() { return g_lastError.c_str(); }

// ---- attention -------------------------------------------------------------------------
int fs_attn_variant_count(int d) { return static_cast<int>(cuda::flashVariants(d).size()); }

// Writes the variant's name into buf (NUL-terminated, truncated to len).
int fs_attn_variant_name(int d, int i, char* buf, int len) {
  return guarded([&] {
    const auto v = cuda::flashVariants(d);
    if (i < 0 || i >= static_cast<int>(v.size())) throw Error("bad_input", "no such variant");
    std::strncpy(buf, v[i].name().c_str(), size_t(len));
    if (len > 0) buf[len - 1] = 0;
  });
}

// The variant that variant = -1 runs for this problem (ignores $FLASHSLIDE_ATTN_VARIANT).
int fs_attn_default_variant_name(int d, int B, int N, int H, char* buf, int len) {
  return guarded([&] {
    std::strncpy(buf, cuda::flashDefaultVariantName(d, B, N, H).c_str(), size_t(len));
    if (len > 0) buf[len - 1] = 0;
  });
}

// qkv [B, N, 3, H, d] bf16 -> out [B, N, H, d] bf16; variant -1 = default.
int fs_attn_forward(const void* qkv, void* out, int B, int N, int H, int d, float scale, int variant, void* stream) {
  return guarded([&] {
    cuda::flashAttentionForward(qkv, out, B, N, H, d, int64_t(3) * H * d, int64_t(H) * d, scale,
                                static_cast<cudaStream_t>(stream), variant);
  });
}

// Same inputs; fp32 output from the plain reference kernel.
int fs_attn_reference(const void* qkv, float* out, int B, int N, int H, int d, float scale, void* stream) {
  return guarded([&] {
    cuda::attentionReference(qkv, out, B, N, H, d, int64_t(3) * H * d, scale, static_cast<cudaStream_t>(stream));
  });
}

// ---- ViT ---------------------------------------------------------------------------------
void* fs_vit_load(const char* weightsPath, const char* configPath) {
  VitHandle* h = nullptr;
  const int rc = guarded([&] {
    std::unique_ptr<VitHandle> hp(new VitHandle);
    SafetensorsReader file(weightsPath);
    hp->weights = std::make_shared<const Weights>(loadWeights(file, ModelConfig::fromJsonFile(configPath)));
    hp->vit.reset(new cuda::CudaVit(hp->weights));
    h = hp.release();
  });
  return rc == 0 ? h : nullptr;
}

void fs_vit_free(void* h) { delete static_cast<VitHandle*>(h); }

int fs_vit_tokens(void* h, int H, int W) {
  int t = -1;
  guarded([&] { t = static_cast<int>(static_cast<VitHandle*>(h)->weights->arch.tokens(H, W)); });
  return t;
}

int fs_vit_dim(void* h) { return static_cast<VitHandle*>(h)->weights->arch.embedDim; }

// rgb: device [B, H, W, 3] uint8; out: device [B, T, D] fp32. Asynchronous on `stream`.
int fs_vit_forward(void* h, const void* rgb, int B, int H, int W, float* out, void* stream) {
  return guarded([&] {
    auto* v = static_cast<VitHandle*>(h);
    const int p = v->weights->arch.patchSize;
    v->weights->arch.tokens(H, W);  // validates H, W
    const PosEmbedView& pos = v->posFor(H / p, W / p);
    v->vit->forwardDevice(static_cast<const uint8_t*>(rgb), B, H, W, pos, out, static_cast<cudaStream_t>(stream));
  });
}

// Device bytes held by the model's weights, activations, workspace and caches: now / peak.
long long fs_vit_device_bytes(void* h) { return static_cast<long long>(static_cast<VitHandle*>(h)->vit->deviceBytes()); }
long long fs_vit_peak_bytes(void* h) {
  return static_cast<long long>(static_cast<VitHandle*>(h)->vit->peakDeviceBytes());
}
int fs_vit_fused_residual(void* h) { return static_cast<VitHandle*>(h)->vit->fusedResidual() ? 1 : 0; }

// Benchmark knobs: per-stage profiling of the next forwards, and the GEMM autotune.
void fs_vit_set_profile(void* h, int on) { static_cast<VitHandle*>(h)->vit->setProfile(on != 0); }
void fs_vit_set_gemm_autotune(void* h, int on) { static_cast<VitHandle*>(h)->vit->setGemmAutotune(on != 0); }
int fs_vit_stage_count() { return cuda::CudaVit::kNumStages; }
const char* fs_vit_stage_name(int s) { return cuda::CudaVit::stageName(s); }
// ms[0 .. fs_vit_stage_count()): per-stage sums of the last profiled forward.
void fs_vit_stage_ms(void* h, float* ms) {
  const float* s = static_cast<VitHandle*>(h)->vit->stageMs();
  for (int i = 0; i < cuda::CudaVit::kNumStages; ++i) ms[i] = s[i];
}

}  // extern "C"
