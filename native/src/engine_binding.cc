// Engine binding: loads a ViT checkpoint and runs forward passes off the JS thread.
//
// JS API (typed in worker/native/addon.ts):
//   engineDevices(): string[]                          backends compiled in ("cpu", later "cuda")
//   loadEngine(weightsPath, configPath, device): Promise<Engine>
//   Engine.arch(): {...}                               what the engine inferred from the weights
//   Engine.tokens(H, W): number
//   Engine.forward(rgb: Buffer, B, H, W): Promise<{ data: Float32Array, batch, tokens, dim, gridH, gridW, millis }>
//   Engine.forwardRowsBf16(rgb: Buffer, B, H, W, rows: Int32Array)
//       : Promise<{ data: Uint16Array (BF16 [rows, dim]), sums: Float64Array [dim], rows, batch, tokens, dim, gridH, gridW, millis }>
//       only the given rows of forward()'s [B*T, D] output, converted (and their columns summed)
//       on the device under CUDA
//   Engine.forwardKeptRowsBf16(rgb: Buffer, B, H, W, offsets: Int32Array [B+1], patches: Int32Array, rows: Int32Array)
//       the same with token dropping (engine.h KeptPatches): image b keeps patches[offsets[b]..offsets[b+1]);
//       rows index the kept forward's output (each image's prefix tokens, then its kept patches)
//
// The input Buffer is used in place (no copy): a reference keeps it alive until the worker ends.
// The output is allocated once per call and handed to JS as an external ArrayBuffer.
// Engine errors reject with an Error whose `code` is the engine's (bad_file, missing_tensor,
// shape_mismatch, unsupported_dtype, unsupported_arch, bad_config, bad_input, out_of_memory).
#include "engine_binding.h"

#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "binding_util.h"
#include "engine/engine.h"

namespace flashslide {

namespace {

Napi::Object archToJs(Napi::Env env, const ModelArch& a) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("embedDim", a.embedDim);
  o.Set("depth", a.depth);
  o.Set("numHeads", a.numHeads);
  o.Set("headDim", a.headDim);
  o.Set("mlpHidden", a.mlpHidden);
  o.Set("mlp", a.mlp == MlpKind::SwiGLU ? "swiglu" : "gelu");
  o.Set("patchSize", a.patchSize);
  o.Set("hasClsToken", a.hasClsToken);
  o.Set("numRegTokens", a.numRegTokens);
  o.Set("numPrefixTokens", a.numPrefixTokens);
  o.Set("layerScale", a.layerScale);
  o.Set("noEmbedClass", a.noEmbedClass);
  Napi::Array grid = Napi::Array::New(env, 2);
  grid.Set(0u, a.posGridH);
  grid.Set(1u, a.posGridW);
  o.Set("posEmbedGrid", grid);
  Napi::Array mean = Napi::Array::New(env, 3), stdev = Napi::Array::New(env, 3);
  for (uint32_t i = 0; i < 3; ++i) {
    mean.Set(i, a.mean[i]);
    stdev.Set(i, a.std[i]);
  }
  o.Set("mean", mean);
  o.Set("std", stdev);
  o.Set("layerNormEps", a.layerNormEps);
  o.Set("numParams", static_cast<double>(a.numParams));
  o.Set("description", a.describe());
  return o;
}

class EngineHandle;

struct AddonData {
  Napi::FunctionReference engineConstructor;
};

class EngineHandle : public Napi::ObjectWrap<EngineHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {
                           InstanceMethod("arch", &EngineHandle::Arch),
                           InstanceMethod("tokens", &EngineHandle::Tokens),
                           InstanceMethod("forward", &EngineHandle::Forward),
                           InstanceMethod("forwardRowsBf16", &EngineHandle::ForwardRowsBf16),
                           InstanceMethod("forwardKeptRowsBf16", &EngineHandle::ForwardKeptRowsBf16),
                           InstanceAccessor("device", &EngineHandle::DeviceName, nullptr),
                           InstanceAccessor("backend", &EngineHandle::BackendName, nullptr),
                       });
  }

  // Only constructed by loadEngine, which passes the loaded engine as an External.
  explicit EngineHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineHandle>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      throw Napi::TypeError::New(info.Env(), "use loadEngine(weights, config, device) to create an Engine");
    }
    auto* raw = info[0].As<Napi::External<Engine>>().Data();
    engine_ = std::shared_ptr<Engine>(raw);
  }

 private:
  Napi::Value Arch(const Napi::CallbackInfo& info) { return archToJs(info.Env(), engine_->arch()); }

  Napi::Value Tokens(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 2 || !info[0].IsNumber() || !info[1].IsNumber()) throw Napi::TypeError::New(env, "tokens(H, W)");
    CaughtError err;
    size_t t = 0;
    if (!capture([&] { t = engine_->tokens(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value()); }, err)) {
      throw toJsError(env, err);
    }
    return Napi::Number::New(env, static_cast<double>(t));
  }

  Napi::Value DeviceName(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), engine_->device() == Device::Cuda ? "cuda" : "cpu");
  }
  Napi::Value BackendName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), engine_->backendName()); }

  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value ForwardRowsBf16(const Napi::CallbackInfo& info);
  Napi::Value ForwardKeptRowsBf16(const Napi::CallbackInfo& info);

  std::shared_ptr<Engine> engine_;
};

class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, std::string weights, std::string config, Device device)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), weights_(std::move(weights)),
        config_(std::move(config)), device_(device) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    if (!capture(
            [&] {
              const ModelConfig cfg = ModelConfig::fromJsonFile(config_);
              engine_ = Engine::load(weights_, cfg, device_);
            },
            err_)) {
      SetError(err_.message);
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    auto* data = env.GetInstanceData<AddonData>();
    Napi::Object handle = data->engineConstructor.New({Napi::External<Engine>::New(env, engine_.release())});
    deferred_.Resolve(handle);
  }

  void OnError(const Napi::Error&) override { deferred_.Reject(toJsError(Env(), err_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string weights_, config_;
  Device device_;
  std::unique_ptr<Engine> engine_;
  CaughtError err_;
};

// What the two forward workers share: the promise, the engine and input kept alive while the
// forward runs off the JS thread, the error, and the result fields.
class ForwardWorkerBase : public Napi::AsyncWorker {
 public:
  Napi::Promise promise() { return deferred_.Promise(); }

  // Public so that `using` gives ForwardWorker this constructor; the class is abstract anyway.
  ForwardWorkerBase(Napi::Env env, std::shared_ptr<Engine> engine, Napi::Buffer<uint8_t> input, int B, int H, int W)
      : Napi::AsyncWorker(env), engine_(std::move(engine)), rgb_(input.Data()), B_(B), H_(H), W_(W),
        deferred_(Napi::Promise::Deferred::New(env)), input_(Napi::Persistent(input)) {}

 protected:
  // Runs on the libuv pool: allocate the outputs and call the engine, setting result_.
  virtual void run() = 0;
  // Back on the JS thread: the output fields of the resolved object besides the result's.
  virtual void setOutputs(Napi::Env env, Napi::Object& o) = 0;

  std::shared_ptr<Engine> engine_;  // keeps the engine alive even if JS drops its handle mid-run
  const uint8_t* rgb_;
  int B_, H_, W_;
  ForwardResult result_;

 private:
  void Execute() override {
    if (!capture([&] { run(); }, err_)) SetError(err_.message);
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object o = Napi::Object::New(env);
    setOutputs(env, o);
    o.Set("batch", result_.batch);
    o.Set("tokens", result_.tokens);
    o.Set("dim", result_.dim);
    o.Set("gridH", result_.gridH);
    o.Set("gridW", result_.gridW);
    o.Set("millis", result_.millis);
    deferred_.Resolve(o);
  }

  void OnError(const Napi::Error&) override { deferred_.Reject(toJsError(Env(), err_).Value()); }

  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Buffer<uint8_t>> input_;
  CaughtError err_;
};

// forward: every token of every image, float32 [B, T, D].
class ForwardWorker : public ForwardWorkerBase {
 public:
  using ForwardWorkerBase::ForwardWorkerBase;

 private:
  void run() override {
    out_.reset(new std::vector<float>(engine_->outputSize(B_, H_, W_)));
    result_ = engine_->forward(rgb_, B_, H_, W_, out_->data());
  }

  void setOutputs(Napi::Env env, Napi::Object& o) override {
    std::vector<float>* vec = out_.release();
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
        env, vec->data(), vec->size() * sizeof(float), [](Napi::Env, void*, std::vector<float>* v) { delete v; }, vec);
    o.Set("data", Napi::Float32Array::New(env, vec->size(), ab, 0));
  }

  std::unique_ptr<std::vector<float>> out_;
};

// forwardRowsBf16: the selected token rows as BF16 and their column sums (what the pipeline
// stores). The output is allocated without zero-fill: the engine writes every value.
class ForwardRowsWorker : public ForwardWorkerBase {
 public:
  ForwardRowsWorker(Napi::Env env, std::shared_ptr<Engine> engine, Napi::Buffer<uint8_t> input, int B, int H, int W,
                    Napi::Int32Array rows)
      : ForwardWorkerBase(env, std::move(engine), input, B, H, W), rowsRef_(Napi::Persistent(rows)), rows_(rows.Data()),
        nRows_(rows.ElementLength()) {}

  // With kept patches set (forwardKeptRowsBf16): token dropping.
  void setKept(Napi::Int32Array offsets, Napi::Int32Array patches) {
    offsetsRef_ = Napi::Persistent(offsets);
    patchesRef_ = Napi::Persistent(patches);
    kept_.offsets = offsets.Data();
    kept_.patches = patches.Data();
  }

 private:
  void run() override {
    const size_t D = static_cast<size_t>(engine_->arch().embedDim);
    out_.reset(new uint16_t[nRows_ * D + 1]);
    sums_.reset(new double[D]);
    result_ = kept_.offsets ? engine_->forwardKeptRowsBf16(rgb_, B_, H_, W_, kept_, rows_, nRows_, out_.get(), sums_.get())
                            : engine_->forwardRowsBf16(rgb_, B_, H_, W_, rows_, nRows_, out_.get(), sums_.get());
  }

  void setOutputs(Napi::Env env, Napi::Object& o) override {
    const size_t D = static_cast<size_t>(result_.dim);
    const size_t n = nRows_ * D;
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
        env, out_.release(), n * sizeof(uint16_t), [](Napi::Env, void* p) { delete[] static_cast<uint16_t*>(p); });
    o.Set("data", Napi::Uint16Array::New(env, n, ab, 0));
    Napi::Float64Array sums = Napi::Float64Array::New(env, D);
    std::memcpy(sums.Data(), sums_.get(), D * sizeof(double));
    o.Set("sums", sums);
    o.Set("rows", static_cast<double>(nRows_));
  }

  Napi::Reference<Napi::Int32Array> rowsRef_, offsetsRef_, patchesRef_;
  KeptPatches kept_;
  const int32_t* rows_;
  size_t nRows_;
  std::unique_ptr<uint16_t[]> out_;
  std::unique_ptr<double[]> sums_;
};

namespace {

struct ForwardArgs {
  int B = 0, H = 0, W = 0;
  std::string error;  // empty when the arguments are valid
};

// forward/forwardRowsBf16 share their first four arguments: rgb, batch, height, width.
ForwardArgs checkForwardArgs(const Napi::CallbackInfo& info, size_t count, bool lastIsRows, const char* usage) {
  ForwardArgs a;
  bool ok = info.Length() == count && info[0].IsBuffer() && info[1].IsNumber() && info[2].IsNumber() && info[3].IsNumber();
  if (ok && lastIsRows) {
    ok = info[4].IsTypedArray() && info[4].As<Napi::TypedArray>().TypedArrayType() == napi_int32_array;
  }
  if (!ok) {
    a.error = usage;
    return a;
  }
  const int64_t B = info[1].As<Napi::Number>().Int64Value();
  const int64_t H = info[2].As<Napi::Number>().Int64Value();
  const int64_t W = info[3].As<Napi::Number>().Int64Value();
  if (B < 1 || H < 1 || W < 1 || B > 65536 || H > 65536 || W > 65536) {
    a.error = "batch, height and width must be positive (got " + std::to_string(B) + "x" + std::to_string(H) + "x" + std::to_string(W) + ")";
    return a;
  }
  const uint64_t need = static_cast<uint64_t>(B) * H * W * 3;
  const size_t have = info[0].As<Napi::Buffer<uint8_t>>().Length();
  if (have != need) {
    a.error = "input buffer has " + std::to_string(have) + " bytes but " + std::to_string(B) + "x" + std::to_string(H) + "x" +
              std::to_string(W) + "x3 RGB needs " + std::to_string(need);
    return a;
  }
  a.B = static_cast<int>(B);
  a.H = static_cast<int>(H);
  a.W = static_cast<int>(W);
  return a;
}

}  // namespace

Napi::Value EngineHandle::Forward(const Napi::CallbackInfo& info) {
  const ForwardArgs a = checkForwardArgs(info, 4, false, "forward(rgb: Buffer, batch, height, width)");
  if (!a.error.empty()) return rejected(info.Env(), "bad_input", a.error);
  auto* worker = new ForwardWorker(info.Env(), engine_, info[0].As<Napi::Buffer<uint8_t>>(), a.B, a.H, a.W);
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

Napi::Value EngineHandle::ForwardRowsBf16(const Napi::CallbackInfo& info) {
  const ForwardArgs a = checkForwardArgs(info, 5, true, "forwardRowsBf16(rgb: Buffer, batch, height, width, rows: Int32Array)");
  if (!a.error.empty()) return rejected(info.Env(), "bad_input", a.error);
  auto* worker = new ForwardRowsWorker(info.Env(), engine_, info[0].As<Napi::Buffer<uint8_t>>(), a.B, a.H, a.W,
                                       info[4].As<Napi::Int32Array>());
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

Napi::Value EngineHandle::ForwardKeptRowsBf16(const Napi::CallbackInfo& info) {
  const char* usage = "forwardKeptRowsBf16(rgb: Buffer, batch, height, width, offsets: Int32Array, patches: Int32Array, rows: Int32Array)";
  auto isInt32 = [&](size_t i) { return info[i].IsTypedArray() && info[i].As<Napi::TypedArray>().TypedArrayType() == napi_int32_array; };
  if (info.Length() != 7 || !isInt32(4) || !isInt32(5) || !isInt32(6)) return rejected(info.Env(), "bad_input", usage);
  const ForwardArgs a = checkForwardArgs(info, 7, false, usage);
  if (!a.error.empty()) return rejected(info.Env(), "bad_input", a.error);
  Napi::Int32Array offsets = info[4].As<Napi::Int32Array>(), patches = info[5].As<Napi::Int32Array>();
  // The engine reads offsets[0..B] and patches[0..offsets[B]): their lengths are checked here.
  if (offsets.ElementLength() != static_cast<size_t>(a.B) + 1) {
    return rejected(info.Env(), "bad_input", "offsets must have batch + 1 = " + std::to_string(a.B + 1) + " entries, got " + std::to_string(offsets.ElementLength()));
  }
  const int32_t total = offsets[static_cast<size_t>(a.B)];
  if (total < 0 || static_cast<size_t>(total) != patches.ElementLength()) {
    return rejected(info.Env(), "bad_input", "offsets[batch] = " + std::to_string(total) + " but patches has " + std::to_string(patches.ElementLength()) + " entries");
  }
  auto* worker = new ForwardRowsWorker(info.Env(), engine_, info[0].As<Napi::Buffer<uint8_t>>(), a.B, a.H, a.W,
                                       info[6].As<Napi::Int32Array>());
  worker->setKept(offsets, patches);
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

Napi::Value LoadEngine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsString()) {
    throw Napi::TypeError::New(env, "loadEngine(weightsPath, configPath, device)");
  }
  const std::string device = info[2].As<Napi::String>();
  Device d;
  if (device == "cpu") {
    d = Device::Cpu;
  } else if (device == "cuda") {
    d = Device::Cuda;
  } else {
    throw Napi::TypeError::New(env, "device must be \"cpu\" or \"cuda\", got \"" + device + "\"");
  }
  auto* worker = new LoadWorker(env, info[0].As<Napi::String>(), info[1].As<Napi::String>(), d);
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

}  // namespace

void InitEngine(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->engineConstructor = Napi::Persistent(EngineHandle::Define(env));
  env.SetInstanceData(data);
  Napi::Array devices = Napi::Array::New(env);
  devices.Set(0u, "cpu");
#ifdef FLASHSLIDE_HAVE_CUDA
  devices.Set(1u, "cuda");
#endif
  exports.Set("engineDevices", devices);
  exports.Set("loadEngine", Napi::Function::New(env, LoadEngine));
}

}  // namespace flashslide
