// OpenSlide binding: opens vendor slide formats (NDPI, MRXS, SCN, BIF, JPEG 2000 SVS, ...) and reads
// regions off the JS thread.
//
// JS API (see worker/slide/native-addon.ts for the typed view):
//   openslideVersion(): string | null          null when built without libopenslide
//   openslideDetectVendor(path): string | null
//   new OpenSlide(path)                          throws with OpenSlide's own reason on failure
//     .properties(): Record<string,string>
//     .levels(): {width,height,downsample}[]
//     .associatedImages(): {name,width,height}[]
//     .readRegion(level, x, y, w, h): Promise<Buffer>   RGB, 3 bytes/px; x,y in level-0 pixels
//     .readAssociatedImage(name): Promise<{data: Buffer, width, height}>
//     .close()
//
// OpenSlide returns premultiplied ARGB; fully transparent pixels are areas the scanner never
// imaged, which are glass, so everything is composited over white before it reaches JS.
#include "openslide_binding.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#ifdef FLASHSLIDE_HAVE_OPENSLIDE
#include <openslide.h>
#endif

namespace flashslide {

namespace {

#ifdef FLASHSLIDE_HAVE_OPENSLIDE

using SlidePtr = std::shared_ptr<openslide_t>;

// Largest read accepted in one call (matches MAX_REGION_PIXELS in worker/slide/slide-source.ts).
constexpr int64_t kMaxPixels = int64_t(1) << 28;

void argbToRgbOverWhite(const uint32_t* src, uint8_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const uint32_t p = src[i];
    const uint32_t a = p >> 24;
    const uint32_t inv = 255 - a;  // premultiplied: over white adds (1 - a) * 255
    dst[3 * i + 0] = static_cast<uint8_t>(((p >> 16) & 0xff) + inv);
    dst[3 * i + 1] = static_cast<uint8_t>(((p >> 8) & 0xff) + inv);
    dst[3 * i + 2] = static_cast<uint8_t>((p & 0xff) + inv);
  }
}

std::string slideError(openslide_t* osr) {
  const char* e = openslide_get_error(osr);
  return e ? std::string(e) : std::string();
}

class ReadRegionWorker : public Napi::AsyncWorker {
 public:
  ReadRegionWorker(Napi::Env env, SlidePtr slide, int32_t level, int64_t x, int64_t y, int64_t w, int64_t h)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), slide_(std::move(slide)),
        level_(level), x_(x), y_(y), w_(w), h_(h) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    const size_t n = static_cast<size_t>(w_ * h_);
    std::vector<uint32_t> argb;
    try {
      argb.resize(n);
      rgb_.resize(n * 3);
    } catch (const std::bad_alloc&) {
      SetError("out of memory for a " + std::to_string(w_) + "x" + std::to_string(h_) + " region");
      return;
    }
    openslide_read_region(slide_.get(), argb.data(), x_, y_, level_, w_, h_);
    const std::string err = slideError(slide_.get());
    if (!err.empty()) {
      SetError(err);
      return;
    }
    argbToRgbOverWhite(argb.data(), rgb_.data(), n);
  }

  void OnOK() override {
    auto* heap = new std::vector<uint8_t>(std::move(rgb_));
    deferred_.Resolve(Napi::Buffer<uint8_t>::New(
        Env(), heap->data(), heap->size(), [](Napi::Env, uint8_t*, std::vector<uint8_t>* v) { delete v; }, heap));
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  SlidePtr slide_;
  int32_t level_;
  int64_t x_, y_, w_, h_;
  std::vector<uint8_t> rgb_;
};

class ReadAssociatedWorker : public Napi::AsyncWorker {
 public:
  ReadAssociatedWorker(Napi::Env env, SlidePtr slide, std::string name)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), slide_(std::move(slide)),
        name_(std::move(name)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    openslide_get_associated_image_dimensions(slide_.get(), name_.c_str(), &w_, &h_);
    if (w_ <= 0 || h_ <= 0 || w_ * h_ > kMaxPixels) {
      SetError("associated image \"" + name_ + "\" has unusable size " + std::to_string(w_) + "x" + std::to_string(h_));
      return;
    }
    const size_t n = static_cast<size_t>(w_ * h_);
    std::vector<uint32_t> argb(n);
    openslide_read_associated_image(slide_.get(), name_.c_str(), argb.data());
    const std::string err = slideError(slide_.get());
    if (!err.empty()) {
      SetError(err);
      return;
    }
    rgb_.resize(n * 3);
    argbToRgbOverWhite(argb.data(), rgb_.data(), n);
  }

  void OnOK() override {
    Napi::Env env = Env();
    auto* heap = new std::vector<uint8_t>(std::move(rgb_));
    Napi::Object out = Napi::Object::New(env);
    out.Set("data", Napi::Buffer<uint8_t>::New(
                        env, heap->data(), heap->size(), [](Napi::Env, uint8_t*, std::vector<uint8_t>* v) { delete v; },
                        heap));
    out.Set("width", Napi::Number::New(env, static_cast<double>(w_)));
    out.Set("height", Napi::Number::New(env, static_cast<double>(h_)));
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  SlidePtr slide_;
  std::string name_;
  int64_t w_ = 0, h_ = 0;
  std::vector<uint8_t> rgb_;
};

class OpenSlideHandle : public Napi::ObjectWrap<OpenSlideHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "OpenSlide",
                       {
                           InstanceMethod("properties", &OpenSlideHandle::Properties),
                           InstanceMethod("levels", &OpenSlideHandle::Levels),
                           InstanceMethod("associatedImages", &OpenSlideHandle::AssociatedImages),
                           InstanceMethod("readRegion", &OpenSlideHandle::ReadRegion),
                           InstanceMethod("readAssociatedImage", &OpenSlideHandle::ReadAssociatedImage),
                           InstanceMethod("close", &OpenSlideHandle::Close),
                       });
  }

  explicit OpenSlideHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<OpenSlideHandle>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "OpenSlide(path): path must be a string");
    const std::string path = info[0].As<Napi::String>();
    openslide_t* osr = openslide_open(path.c_str());
    if (osr == nullptr) throw Napi::Error::New(env, "OpenSlide does not recognise this file format");
    const std::string err = slideError(osr);
    if (!err.empty()) {
      openslide_close(osr);
      throw Napi::Error::New(env, err);
    }
    // Reads in flight hold their own reference, so close() during a read is safe.
    slide_ = SlidePtr(osr, openslide_close);
  }

 private:
  openslide_t* live(Napi::Env env) {
    if (!slide_) throw Napi::Error::New(env, "slide is closed");
    return slide_.get();
  }

  Napi::Value Properties(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    openslide_t* osr = live(env);
    Napi::Object out = Napi::Object::New(env);
    for (const char* const* name = openslide_get_property_names(osr); name && *name; ++name) {
      const char* value = openslide_get_property_value(osr, *name);
      out.Set(*name, value ? value : "");
    }
    return out;
  }

  Napi::Value Levels(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    openslide_t* osr = live(env);
    const int32_t count = openslide_get_level_count(osr);
    Napi::Array out = Napi::Array::New(env, count < 0 ? 0 : count);
    for (int32_t i = 0; i < count; ++i) {
      int64_t w = 0, h = 0;
      openslide_get_level_dimensions(osr, i, &w, &h);
      Napi::Object lvl = Napi::Object::New(env);
      lvl.Set("width", Napi::Number::New(env, static_cast<double>(w)));
      lvl.Set("height", Napi::Number::New(env, static_cast<double>(h)));
      lvl.Set("downsample", Napi::Number::New(env, openslide_get_level_downsample(osr, i)));
      out.Set(static_cast<uint32_t>(i), lvl);
    }
    return out;
  }

  Napi::Value AssociatedImages(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    openslide_t* osr = live(env);
    Napi::Array out = Napi::Array::New(env);
    uint32_t i = 0;
    for (const char* const* name = openslide_get_associated_image_names(osr); name && *name; ++name) {
      int64_t w = 0, h = 0;
      openslide_get_associated_image_dimensions(osr, *name, &w, &h);
      Napi::Object img = Napi::Object::New(env);
      img.Set("name", *name);
      img.Set("width", Napi::Number::New(env, static_cast<double>(w)));
      img.Set("height", Napi::Number::New(env, static_cast<double>(h)));
      out.Set(i++, img);
    }
    return out;
  }

  Napi::Value ReadRegion(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    live(env);
    if (info.Length() < 5) throw Napi::TypeError::New(env, "readRegion(level, x, y, width, height)");
    for (size_t i = 0; i < 5; ++i) {
      if (!info[i].IsNumber()) throw Napi::TypeError::New(env, "readRegion arguments must be numbers");
    }
    const int32_t level = info[0].As<Napi::Number>().Int32Value();
    const int64_t x = info[1].As<Napi::Number>().Int64Value();
    const int64_t y = info[2].As<Napi::Number>().Int64Value();
    const int64_t w = info[3].As<Napi::Number>().Int64Value();
    const int64_t h = info[4].As<Napi::Number>().Int64Value();
    if (w <= 0 || h <= 0 || w * h > kMaxPixels) {
      throw Napi::RangeError::New(env, "region " + std::to_string(w) + "x" + std::to_string(h) + " is empty or too large");
    }
    auto* worker = new ReadRegionWorker(env, slide_, level, x, y, w, h);
    Napi::Promise p = worker->promise();
    worker->Queue();
    return p;
  }

  Napi::Value ReadAssociatedImage(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    live(env);
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "readAssociatedImage(name)");
    auto* worker = new ReadAssociatedWorker(env, slide_, info[0].As<Napi::String>());
    Napi::Promise p = worker->promise();
    worker->Queue();
    return p;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    slide_.reset();
    return info.Env().Undefined();
  }

  SlidePtr slide_;
};

#endif  // FLASHSLIDE_HAVE_OPENSLIDE

}  // namespace

void InitOpenSlide(Napi::Env env, Napi::Object exports) {
#ifdef FLASHSLIDE_HAVE_OPENSLIDE
  exports.Set("openslideVersion", Napi::String::New(env, openslide_get_version()));
  exports.Set("openslideDetectVendor", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                if (info.Length() < 1 || !info[0].IsString()) {
                  throw Napi::TypeError::New(info.Env(), "openslideDetectVendor(path)");
                }
                const std::string path = info[0].As<Napi::String>();
                const char* vendor = openslide_detect_vendor(path.c_str());
                return vendor ? Napi::Value(Napi::String::New(info.Env(), vendor)) : info.Env().Null();
              }));
  exports.Set("OpenSlide", OpenSlideHandle::Define(env));
#else
  exports.Set("openslideVersion", env.Null());
#endif
}

}  // namespace flashslide
