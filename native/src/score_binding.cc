// Scoring kernels for JS: nearest-neighbour distances (reference banks) and the centred float32
// products of the `self` scorer's PCA. Every call runs on the libuv pool (AsyncWorker), never on
// the event loop: a queue worker must keep renewing its job lock while a slide is scored.
//
// JS API (typed in worker/native/addon.ts):
//   createNearestIndex(bank: Float32Array, size, dim, device: "cpu" | "cuda"): Promise<NearestIndex>
//   NearestIndex.search(queries: Float32Array, count): Promise<Float32Array>   (count distances)
//   NearestIndex.close()                          frees the bank (device memory for cuda) now
//   NearestIndex.size / .dim / .device
//   nearestDistances(bank, size, queries, count, dim, device): Promise<Float32Array>   (one-shot)
//   projectCentered(rows: Float32Array, count, dim, center: Float64Array, basis: Float32Array, k)
//       : Promise<{ coords: Float32Array [count, k], sqNorms: Float64Array [count] }>
//   combineCentered(rows: Float32Array, count, dim, center: Float64Array, weights: Float32Array, l)
//       : Promise<Float32Array [l, dim]>
//
// Inputs are used in place (a reference keeps each typed array alive until the worker ends; the
// caller must not modify them meanwhile); outputs are allocated on the main thread before the
// work is queued and filled on the worker thread. Errors reject with an Error whose `code` is
// bad_input, unsupported_device, out_of_memory, cuda_error or internal.
#include "score_binding.h"

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "binding_util.h"
#include "cpu/centered_gemm_cpu.h"
#include "cpu/knn_cpu.h"
#ifdef FLASHSLIDE_HAVE_CUDA
#include "cuda/knn_cuda.h"
#endif

namespace flashslide {

namespace {

// The CPU or the CUDA index behind one JS NearestIndex.
class NearestIndex {
 public:
  NearestIndex(const float* bank, int64_t size, int dim, bool cuda) : size_(size), dim_(dim), cuda_(cuda) {
#ifdef FLASHSLIDE_HAVE_CUDA
    if (cuda) {
      gpu_.reset(new cuda::CudaNearestIndex(bank, size, dim));
      return;
    }
#endif
    cpu_.reset(new CpuNearestIndex(bank, size, dim));
  }
  void search(const float* q, int64_t n, float* out) {
#ifdef FLASHSLIDE_HAVE_CUDA
    if (gpu_) return gpu_->search(q, n, out);
#endif
    cpu_->search(q, n, out);
  }
  int64_t size() const { return size_; }
  int dim() const { return dim_; }
  bool cuda() const { return cuda_; }

 private:
  int64_t size_;
  int dim_;
  bool cuda_;
  std::unique_ptr<CpuNearestIndex> cpu_;
#ifdef FLASHSLIDE_HAVE_CUDA
  std::unique_ptr<cuda::CudaNearestIndex> gpu_;
#endif
};

bool isInt(const Napi::Value& v) {
  if (!v.IsNumber()) return false;
  const double d = v.As<Napi::Number>().DoubleValue();
  return std::isfinite(d) && d >= 0 && d == std::floor(d) && d <= 9007199254740991.0;
}

int64_t intOf(const Napi::Value& v) { return v.As<Napi::Number>().Int64Value(); }

bool isF32(const Napi::Value& v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array;
}
bool isF64(const Napi::Value& v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array;
}

std::string lengthMismatch(const char* what, size_t got, const std::string& expected) {
  return std::string(what) + " has " + std::to_string(got) + " values, expected " + expected;
}

// Parses "cpu" / "cuda"; false with a message when the device is unknown or not built in.
bool parseDevice(const Napi::Value& v, bool& cuda, CaughtError& err) {
  const std::string d = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string("?");
  if (d == "cpu") {
    cuda = false;
    return true;
  }
  if (d == "cuda") {
#ifdef FLASHSLIDE_HAVE_CUDA
    cuda = true;
    return true;
#else
    err = {"unsupported_device", "this build has no CUDA backend (it is built only where nvcc and cuBLAS exist); use the cpu device"};
    return false;
#endif
  }
  err = {"bad_input", "device must be \"cpu\" or \"cuda\", got \"" + d + "\""};
  return false;
}

// Runs `work` on the libuv pool; `result` builds the resolved value on the main thread. The
// inputs listed in `keep` stay referenced until the worker is done.
class CallWorker : public Napi::AsyncWorker {
 public:
  CallWorker(Napi::Env env, std::vector<Napi::Value> keep, std::function<void()> work,
             std::function<Napi::Value(Napi::Env)> result)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        result_(std::move(result)) {
    for (const Napi::Value& v : keep) keep_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    if (!capture(work_, err_, "score fewer patches per call, or use a smaller reference bank")) SetError(err_.message);
  }
  void OnOK() override { deferred_.Resolve(result_(Env())); }
  void OnError(const Napi::Error&) override { deferred_.Reject(toJsError(Env(), err_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> keep_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> result_;
  CaughtError err_;
};

Napi::Promise queue(CallWorker* w) {
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

class NearestIndexHandle : public Napi::ObjectWrap<NearestIndexHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NearestIndex",
                       {
                           InstanceMethod("search", &NearestIndexHandle::Search),
                           InstanceMethod("close", &NearestIndexHandle::Close),
                           InstanceAccessor("size", &NearestIndexHandle::Size, nullptr),
                           InstanceAccessor("dim", &NearestIndexHandle::Dim, nullptr),
                           InstanceAccessor("device", &NearestIndexHandle::Device, nullptr),
                       });
  }

  // Only constructed by createNearestIndex, which passes the built index as an External.
  explicit NearestIndexHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NearestIndexHandle>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      throw Napi::TypeError::New(info.Env(), "use createNearestIndex(bank, size, dim, device) to create a NearestIndex");
    }
    auto* raw = info[0].As<Napi::External<NearestIndex>>().Data();
    index_ = std::shared_ptr<NearestIndex>(raw);
    size_ = raw->size();
    dim_ = raw->dim();
    cuda_ = raw->cuda();
  }

 private:
  Napi::Value Search(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!index_) return rejected(env, "bad_input", "search on a closed NearestIndex");
    if (info.Length() != 2 || !isF32(info[0]) || !isInt(info[1])) {
      return rejected(env, "bad_input", "search(queries: Float32Array, count)");
    }
    auto q = info[0].As<Napi::Float32Array>();
    const int64_t n = intOf(info[1]);
    if (q.ElementLength() != static_cast<size_t>(n) * dim_) {
      return rejected(env, "bad_input", lengthMismatch("queries", q.ElementLength(), std::to_string(n) + " x " + std::to_string(dim_)));
    }
    auto out = Napi::Float32Array::New(env, static_cast<size_t>(n));
    std::shared_ptr<NearestIndex> index = index_;  // alive until the search ends, even if closed meanwhile
    const float* qp = q.Data();
    float* op = out.Data();
    auto* w = new CallWorker(
        env, {q, out}, [index, qp, n, op] { index->search(qp, n, op); },
        [ref = std::make_shared<Napi::ObjectReference>(Napi::Persistent(out.As<Napi::Object>()))](Napi::Env) {
          return ref->Value();
        });
    return queue(w);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    index_.reset();
    return info.Env().Undefined();
  }
  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(size_)); }
  Napi::Value Dim(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), dim_); }
  Napi::Value Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), cuda_ ? "cuda" : "cpu"); }

  std::shared_ptr<NearestIndex> index_;
  int64_t size_ = 0;
  int dim_ = 0;
  bool cuda_ = false;
};

// Shared argument checks of createNearestIndex and nearestDistances: the bank and device.
bool checkBank(const Napi::Value& bank, const Napi::Value& size, const Napi::Value& dim, std::string& why) {
  if (!isF32(bank) || !isInt(size) || !isInt(dim)) {
    why = "bank must be a Float32Array and size, dim non-negative integers";
    return false;
  }
  const int64_t s = intOf(size), d = intOf(dim);
  if (s < 1 || d < 1 || d > 1 << 20) {
    why = "nearest-neighbour search needs a non-empty bank and 1 <= dim <= 2^20 (got size " + std::to_string(s) +
          ", dim " + std::to_string(d) + ")";
    return false;
  }
  if (bank.As<Napi::Float32Array>().ElementLength() != static_cast<size_t>(s * d)) {
    why = lengthMismatch("bank", bank.As<Napi::Float32Array>().ElementLength(), std::to_string(s) + " x " + std::to_string(d));
    return false;
  }
  return true;
}

// `ctor`: the NearestIndex class of this env (captured by the exported function).
Napi::Value CreateNearestIndex(const Napi::CallbackInfo& info, const std::shared_ptr<Napi::FunctionReference>& ctor) {
  Napi::Env env = info.Env();
  std::string why;
  if (info.Length() != 4) return rejected(env, "bad_input", "createNearestIndex(bank: Float32Array, size, dim, device)");
  if (!checkBank(info[0], info[1], info[2], why)) return rejected(env, "bad_input", why);
  CaughtError err;
  bool cuda = false;
  if (!parseDevice(info[3], cuda, err)) return rejected(env, err.code, err.message);
  auto bank = info[0].As<Napi::Float32Array>();
  const float* bp = bank.Data();
  const int64_t size = intOf(info[1]);
  const int dim = static_cast<int>(intOf(info[2]));
  auto built = std::make_shared<std::unique_ptr<NearestIndex>>();
  auto* w = new CallWorker(
      env, {bank}, [built, bp, size, dim, cuda] { built->reset(new NearestIndex(bp, size, dim, cuda)); },
      [built, ctor](Napi::Env e) -> Napi::Value {
        return ctor->New({Napi::External<NearestIndex>::New(e, built->release())});
      });
  return queue(w);
}

Napi::Value NearestDistances(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string why;
  if (info.Length() != 6 || !isF32(info[2]) || !isInt(info[3])) {
    return rejected(env, "bad_input", "nearestDistances(bank: Float32Array, size, queries: Float32Array, count, dim, device)");
  }
  if (!checkBank(info[0], info[1], info[4], why)) return rejected(env, "bad_input", why);
  CaughtError err;
  bool cuda = false;
  if (!parseDevice(info[5], cuda, err)) return rejected(env, err.code, err.message);
  auto bank = info[0].As<Napi::Float32Array>();
  auto q = info[2].As<Napi::Float32Array>();
  const int64_t size = intOf(info[1]), n = intOf(info[3]);
  const int dim = static_cast<int>(intOf(info[4]));
  if (q.ElementLength() != static_cast<size_t>(n) * dim) {
    return rejected(env, "bad_input", lengthMismatch("queries", q.ElementLength(), std::to_string(n) + " x " + std::to_string(dim)));
  }
  auto out = Napi::Float32Array::New(env, static_cast<size_t>(n));
  const float *bp = bank.Data(), *qp = q.Data();
  float* op = out.Data();
  auto ref = std::make_shared<Napi::ObjectReference>(Napi::Persistent(out.As<Napi::Object>()));
  auto* w = new CallWorker(
      env, {bank, q, out},
      [=] {
        NearestIndex index(bp, size, dim, cuda);
        index.search(qp, n, op);
      },
      [ref](Napi::Env) { return ref->Value(); });
  return queue(w);
}

Napi::Value ProjectCentered(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "projectCentered(rows: Float32Array, count, dim, center: Float64Array, basis: Float32Array, k)";
  if (info.Length() != 6 || !isF32(info[0]) || !isInt(info[1]) || !isInt(info[2]) || !isF64(info[3]) || !isF32(info[4]) ||
      !isInt(info[5])) {
    return rejected(env, "bad_input", usage);
  }
  auto rows = info[0].As<Napi::Float32Array>();
  auto center = info[3].As<Napi::Float64Array>();
  auto basis = info[4].As<Napi::Float32Array>();
  const int64_t n = intOf(info[1]), dim = intOf(info[2]), k = intOf(info[5]);
  if (dim < 1 || dim > 1 << 20 || k > 1 << 16) return rejected(env, "bad_input", std::string(usage) + ": need 1 <= dim <= 2^20, k <= 2^16");
  if (rows.ElementLength() != static_cast<size_t>(n * dim)) return rejected(env, "bad_input", lengthMismatch("rows", rows.ElementLength(), std::to_string(n) + " x " + std::to_string(dim)));
  if (center.ElementLength() != static_cast<size_t>(dim)) return rejected(env, "bad_input", lengthMismatch("center", center.ElementLength(), std::to_string(dim)));
  if (basis.ElementLength() != static_cast<size_t>(k * dim)) return rejected(env, "bad_input", lengthMismatch("basis", basis.ElementLength(), std::to_string(k) + " x " + std::to_string(dim)));
  auto coords = Napi::Float32Array::New(env, static_cast<size_t>(n * k));
  auto norms = Napi::Float64Array::New(env, static_cast<size_t>(n));
  const float *rp = rows.Data(), *bp = basis.Data();
  const double* cp = center.Data();
  float* op = coords.Data();
  double* np = norms.Data();
  Napi::Object result = Napi::Object::New(env);
  result.Set("coords", coords);
  result.Set("sqNorms", norms);
  auto ref = std::make_shared<Napi::ObjectReference>(Napi::Persistent(result));
  auto* w = new CallWorker(
      env, {rows, center, basis, result},
      [=] { projectCenteredCpu(rp, n, static_cast<int>(dim), cp, bp, static_cast<int>(k), op, np); },
      [ref](Napi::Env) { return ref->Value(); });
  return queue(w);
}

Napi::Value CombineCentered(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "combineCentered(rows: Float32Array, count, dim, center: Float64Array, weights: Float32Array, l)";
  if (info.Length() != 6 || !isF32(info[0]) || !isInt(info[1]) || !isInt(info[2]) || !isF64(info[3]) || !isF32(info[4]) ||
      !isInt(info[5])) {
    return rejected(env, "bad_input", usage);
  }
  auto rows = info[0].As<Napi::Float32Array>();
  auto center = info[3].As<Napi::Float64Array>();
  auto weights = info[4].As<Napi::Float32Array>();
  const int64_t n = intOf(info[1]), dim = intOf(info[2]), l = intOf(info[5]);
  if (dim < 1 || dim > 1 << 20 || l > 1 << 16) return rejected(env, "bad_input", std::string(usage) + ": need 1 <= dim <= 2^20, l <= 2^16");
  if (rows.ElementLength() != static_cast<size_t>(n * dim)) return rejected(env, "bad_input", lengthMismatch("rows", rows.ElementLength(), std::to_string(n) + " x " + std::to_string(dim)));
  if (center.ElementLength() != static_cast<size_t>(dim)) return rejected(env, "bad_input", lengthMismatch("center", center.ElementLength(), std::to_string(dim)));
  if (weights.ElementLength() != static_cast<size_t>(l * n)) return rejected(env, "bad_input", lengthMismatch("weights", weights.ElementLength(), std::to_string(l) + " x " + std::to_string(n)));
  auto out = Napi::Float32Array::New(env, static_cast<size_t>(l * dim));
  const float *rp = rows.Data(), *wp = weights.Data();
  const double* cp = center.Data();
  float* op = out.Data();
  auto ref = std::make_shared<Napi::ObjectReference>(Napi::Persistent(out.As<Napi::Object>()));
  auto* w = new CallWorker(
      env, {rows, center, weights, out},
      [=] { combineCenteredCpu(rp, n, static_cast<int>(dim), cp, wp, static_cast<int>(l), op); },
      [ref](Napi::Env) { return ref->Value(); });
  return queue(w);
}

}  // namespace

void InitScore(Napi::Env env, Napi::Object exports) {
  // The env's one instance-data slot belongs to the engine binding, so the class reference
  // travels in the exported function's closure instead.
  auto ctor = std::make_shared<Napi::FunctionReference>(Napi::Persistent(NearestIndexHandle::Define(env)));
  exports.Set("createNearestIndex", Napi::Function::New(env, [ctor](const Napi::CallbackInfo& info) {
                return CreateNearestIndex(info, ctor);
              }));
  exports.Set("nearestDistances", Napi::Function::New(env, NearestDistances));
  exports.Set("projectCentered", Napi::Function::New(env, ProjectCentered));
  exports.Set("combineCentered", Napi::Function::New(env, CombineCentered));
}

}  // namespace flashslide
