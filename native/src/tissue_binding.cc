// The plan stage's tissue detection in C++: classification, Otsu, morphology and connected
// components on the slide overview (16 Mpx for a 40000 px slide), and the area-averaging
// binning that builds the overview. In JavaScript these loops took ~1 s of the event loop per
// slide, time in which a worker could not feed the engine; here the mask runs on the thread
// pool in tens of milliseconds.
//
// Algorithm (the JavaScript twin, worker/tissue/tissue-mask.ts, documents why each step):
//   1. per pixel: value = max(r,g,b); saturation = round(255 (max - min) / max); green/cyan pen
//      ink is not eligible.
//   2. mode: fluorescence when the median value is below `fluorescenceMedian`, else brightfield.
//   3. brightfield: Otsu on the saturation of eligible pixels brighter than `dark`, clamped to
//      [satMin, satMax]; fluorescence: Otsu on value, at least `fluoMin`.
//   4. closing (radius `closing`), opening (radius `opening`), both square and separable.
//   5. 8-connected components smaller than `minArea` pixels cleared.
// Every threshold arrives as the integer the JavaScript computes, so that both give the same
// mask bit for bit (tests compare them on real slides).
//
// JS API (typed in worker/native/tissue-kernels.ts):
//   detectTissueMask(rgb: Uint8Array, width, height, params: {mode: 0 auto | 1 brightfield |
//       2 fluorescence, fluorescenceMedian, dark, satMin, satMax, fluoMin, radius,
//       fluorescenceClosing, minArea}): Promise<{mask: Uint8Array, fluorescence: boolean,
//       threshold: number (0..255), components: number, count: number}>
//   accumulateBins(tile: Uint8Array, width, height, colBin: Int32Array, colOffset, rowBin:
//       Int32Array, rowOffset, rowBase, outWidth, sums: Float64Array, counts: Uint32Array): void
//       adds each RGB pixel of the tile to sums[((rowBin[rowOffset + r] - rowBase) * outWidth
//       + colBin[colOffset + c]) * 3 + ch] and counts one; integer sums, so exact in any order.
#include "tissue_binding.h"

#include "binding_util.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace flashslide {

namespace {

struct MaskParams {
  int mode = 0;  // 0 auto, 1 brightfield, 2 fluorescence
  int fluorescenceMedian = 0;
  int dark = 0;
  int satMin = 0;
  int satMax = 255;
  int fluoMin = 0;
  int radius = 2;
  int fluorescenceClosing = 6;
  int64_t minArea = 4;
};

struct MaskResult {
  std::vector<uint8_t> mask;
  bool fluorescence = false;
  int threshold = 0;
  int components = 0;
  int64_t count = 0;
};

// Same arithmetic as otsuThreshold in tissue-mask.ts (doubles, same order): same index.
int otsu(const uint32_t* hist) {
  double total = 0, sumAll = 0;
  for (int i = 0; i < 256; ++i) {
    total += hist[i];
    sumAll += static_cast<double>(i) * hist[i];
  }
  if (total == 0) return 0;
  double wB = 0, sumB = 0, bestVar = -1;
  int best = 0;
  for (int t = 0; t < 256; ++t) {
    wB += hist[t];
    if (wB == 0) continue;
    const double wF = total - wB;
    if (wF == 0) break;
    sumB += static_cast<double>(t) * hist[t];
    const double mB = sumB / wB;
    const double mF = (sumAll - sumB) / wF;
    const double between = wB * wF * (mB - mF) * (mB - mF);
    if (between > bestVar) {
      bestVar = between;
      best = t;
    }
  }
  return best;
}

// Running-count passes; out-of-image pixels are background for dilation, foreground for
// erosion (see morphology.ts).
void passRows(const uint8_t* src, uint8_t* dst, int w, int h, int r, bool dilate) {
  const uint8_t hit = dilate ? 1 : 0;
#pragma omp parallel for schedule(static)
  for (int y = 0; y < h; ++y) {
    const uint8_t* s = src + static_cast<int64_t>(y) * w;
    uint8_t* d = dst + static_cast<int64_t>(y) * w;
    int count = 0;
    for (int k = 0; k <= std::min(r, w - 1); ++k) count += s[k] == hit;
    for (int i = 0; i < w; ++i) {
      d[i] = dilate ? (count > 0) : (count == 0);
      const int leave = i - r, enter = i + r + 1;
      if (leave >= 0 && s[leave] == hit) --count;
      if (enter < w && s[enter] == hit) ++count;
    }
  }
}

// Columns in blocks, one block per thread, each walking its columns down row by row.
void passColumns(const uint8_t* src, uint8_t* dst, int w, int h, int r, bool dilate) {
  const uint8_t flip = dilate ? 0 : 1;
  constexpr int kBlock = 512;
#pragma omp parallel for schedule(static)
  for (int x0 = 0; x0 < w; x0 += kBlock) {
    const int bw = std::min(kBlock, w - x0);
    int32_t count[kBlock] = {0};
    for (int k = 0; k <= std::min(r, h - 1); ++k) {
      const uint8_t* row = src + static_cast<int64_t>(k) * w + x0;
      for (int x = 0; x < bw; ++x) count[x] += row[x] ^ flip;
    }
    for (int y = 0; y < h; ++y) {
      uint8_t* d = dst + static_cast<int64_t>(y) * w + x0;
      if (dilate)
        for (int x = 0; x < bw; ++x) d[x] = count[x] > 0;
      else
        for (int x = 0; x < bw; ++x) d[x] = count[x] == 0;
      const int leave = y - r, enter = y + r + 1;
      if (leave >= 0) {
        const uint8_t* l = src + static_cast<int64_t>(leave) * w + x0;
        for (int x = 0; x < bw; ++x) count[x] -= l[x] ^ flip;
      }
      if (enter < h) {
        const uint8_t* e = src + static_cast<int64_t>(enter) * w + x0;
        for (int x = 0; x < bw; ++x) count[x] += e[x] ^ flip;
      }
    }
  }
}

void morph(std::vector<uint8_t>& mask, std::vector<uint8_t>& tmp, int w, int h, int r, bool dilate) {
  if (r <= 0) return;
  passRows(mask.data(), tmp.data(), w, h, r, dilate);
  passColumns(tmp.data(), mask.data(), w, h, r, dilate);
}

// Clears 8-connected components of fewer than minArea pixels; returns how many remain.
int removeSmallComponents(std::vector<uint8_t>& mask, int w, int h, int64_t minArea) {
  const int64_t n = static_cast<int64_t>(w) * h;
  std::vector<uint8_t> seen(n, 0);
  std::vector<int64_t> stack, members;
  int kept = 0;
  for (int64_t start = 0; start < n; ++start) {
    if (mask[start] != 1 || seen[start]) continue;
    stack.clear();
    members.clear();
    stack.push_back(start);
    seen[start] = 1;
    while (!stack.empty()) {
      const int64_t p = stack.back();
      stack.pop_back();
      members.push_back(p);
      const int x = static_cast<int>(p % w), y = static_cast<int>(p / w);
      for (int dy = -1; dy <= 1; ++dy) {
        const int yy = y + dy;
        if (yy < 0 || yy >= h) continue;
        for (int dx = -1; dx <= 1; ++dx) {
          const int xx = x + dx;
          if (xx < 0 || xx >= w) continue;
          const int64_t q = static_cast<int64_t>(yy) * w + xx;
          if (mask[q] == 1 && !seen[q]) {
            seen[q] = 1;
            stack.push_back(q);
          }
        }
      }
    }
    if (static_cast<int64_t>(members.size()) < minArea) {
      for (int64_t p : members) mask[p] = 0;
    } else {
      ++kept;
    }
  }
  return kept;
}

MaskResult detectMask(const uint8_t* rgb, int w, int h, const MaskParams& p) {
  const int64_t n = static_cast<int64_t>(w) * h;
  std::vector<uint8_t> sat(n), val(n), eligible(n);
  uint32_t valHist[256] = {0};
#pragma omp parallel for schedule(static) reduction(+ : valHist[:256])
  for (int64_t i = 0; i < n; ++i) {
    const int r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
    const int mx = std::max(r, std::max(g, b)), mn = std::min(r, std::min(g, b));
    val[i] = static_cast<uint8_t>(mx);
    // round(255 (mx - mn) / mx), halves up, in integers: exactly Math.round's result.
    sat[i] = mx == 0 ? 0 : static_cast<uint8_t>((2 * 255 * (mx - mn) + mx) / (2 * mx));
    ++valHist[mx];
    // Green and cyan pen ink (isPenInk in tissue-mask.ts): saturated, green-dominant.
    const bool ink = mx != 0 && 4 * (mx - mn) >= mx && g >= r + 20 && g + 10 >= b;
    eligible[i] = !ink;
  }
  int median = 0;
  for (uint64_t acc = 0; median < 255; ++median) {
    acc += valHist[median];
    if (2 * acc >= static_cast<uint64_t>(n)) break;
  }
  MaskResult out;
  out.fluorescence = p.mode == 0 ? median < p.fluorescenceMedian : p.mode == 2;
  out.mask.assign(n, 0);
  if (!out.fluorescence) {
    uint32_t hist[256] = {0};
    for (int64_t i = 0; i < n; ++i)
      if (eligible[i] && val[i] > p.dark) ++hist[sat[i]];
    const int t = std::min(p.satMax, std::max(p.satMin, otsu(hist)));
    out.threshold = t;
    for (int64_t i = 0; i < n; ++i) out.mask[i] = eligible[i] && val[i] > p.dark && sat[i] > t;
  } else {
    const int t = std::max(p.fluoMin, otsu(valHist));
    out.threshold = t;
    for (int64_t i = 0; i < n; ++i) out.mask[i] = val[i] > t;
  }
  const int closing = out.fluorescence ? std::max(p.radius, p.fluorescenceClosing) : p.radius;
  std::vector<uint8_t> tmp(n);
  morph(out.mask, tmp, w, h, closing, true);
  morph(out.mask, tmp, w, h, closing, false);
  const int opening = std::max(1, p.radius - 1);
  morph(out.mask, tmp, w, h, opening, false);
  morph(out.mask, tmp, w, h, opening, true);
  out.components = removeSmallComponents(out.mask, w, h, p.minArea);
  for (int64_t i = 0; i < n; ++i) out.count += out.mask[i];
  return out;
}

class MaskWorker : public Napi::AsyncWorker {
 public:
  MaskWorker(Napi::Env env, Napi::Uint8Array rgb, int w, int h, MaskParams params)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), data_(rgb.Data()), w_(w), h_(h), params_(params) {
    // The pixels stay alive (and unmoved) while the thread pool reads them.
    keep_ = Napi::Persistent(rgb);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    if (!capture([&] { result_ = detectMask(data_, w_, h_, params_); }, error_, "the overview is too large for this machine's memory"))
      SetError(error_.message);
  }
  void OnOK() override {
    Napi::Env env = Env();
    auto mask = Napi::Uint8Array::New(env, result_.mask.size());
    std::copy(result_.mask.begin(), result_.mask.end(), mask.Data());
    auto o = Napi::Object::New(env);
    o.Set("mask", mask);
    o.Set("fluorescence", Napi::Boolean::New(env, result_.fluorescence));
    o.Set("threshold", Napi::Number::New(env, result_.threshold));
    o.Set("components", Napi::Number::New(env, result_.components));
    o.Set("count", Napi::Number::New(env, static_cast<double>(result_.count)));
    keep_.Reset();
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error&) override {
    keep_.Reset();
    deferred_.Reject(toJsError(Env(), error_).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Uint8Array> keep_;
  const uint8_t* data_;
  int w_, h_;
  MaskParams params_;
  MaskResult result_;
  CaughtError error_;
};

Napi::Value DetectTissueMask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4 || !typedArrayOf(info[0], napi_uint8_array) || !info[3].IsObject())
    throw Napi::TypeError::New(env, "detectTissueMask(rgb: Uint8Array, width: number, height: number, params: object)");
  auto rgb = info[0].As<Napi::Uint8Array>();
  const int w = static_cast<int>(checkedInt(info[1], "width", 1, 1 << 20));
  const int h = static_cast<int>(checkedInt(info[2], "height", 1, 1 << 20));
  if (static_cast<int64_t>(rgb.ElementLength()) < int64_t(3) * w * h)
    throw Napi::RangeError::New(env, "detectTissueMask: rgb must hold width x height x 3 bytes");
  auto o = info[3].As<Napi::Object>();
  auto field = [&](const char* name, int64_t lo, int64_t hi) { return checkedInt(o.Get(name), std::string("params.") + name, lo, hi); };
  MaskParams p;
  p.mode = static_cast<int>(field("mode", 0, 2));
  p.fluorescenceMedian = static_cast<int>(field("fluorescenceMedian", 0, 256));
  p.dark = static_cast<int>(field("dark", 0, 255));
  p.satMin = static_cast<int>(field("satMin", 0, 255));
  p.satMax = static_cast<int>(field("satMax", 0, 255));
  p.fluoMin = static_cast<int>(field("fluoMin", 0, 255));
  p.radius = static_cast<int>(field("radius", 0, 1 << 16));
  p.fluorescenceClosing = static_cast<int>(field("fluorescenceClosing", 0, 1 << 16));
  p.minArea = field("minArea", 0, int64_t(1) << 40);
  auto* worker = new MaskWorker(env, rgb, w, h, p);
  auto promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value AccumulateBins(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 11 || !typedArrayOf(info[0], napi_uint8_array) || !typedArrayOf(info[3], napi_int32_array) ||
      !typedArrayOf(info[5], napi_int32_array) || !typedArrayOf(info[9], napi_float64_array) || !typedArrayOf(info[10], napi_uint32_array))
    throw Napi::TypeError::New(env,
                               "accumulateBins(tile: Uint8Array, width, height, colBin: Int32Array, colOffset, rowBin: Int32Array, "
                               "rowOffset, rowBase, outWidth, sums: Float64Array, counts: Uint32Array)");
  auto tile = info[0].As<Napi::Uint8Array>();
  const int64_t w = checkedInt(info[1], "width", 0, 1 << 24), h = checkedInt(info[2], "height", 0, 1 << 24);
  auto colBin = info[3].As<Napi::Int32Array>();
  const int64_t colOffset = checkedInt(info[4], "colOffset", 0, int64_t(1) << 32);
  auto rowBin = info[5].As<Napi::Int32Array>();
  const int64_t rowOffset = checkedInt(info[6], "rowOffset", 0, int64_t(1) << 32);
  const int64_t rowBase = checkedInt(info[7], "rowBase", 0, int64_t(1) << 32);
  const int64_t outW = checkedInt(info[8], "outWidth", 1, int64_t(1) << 24);
  auto sums = info[9].As<Napi::Float64Array>();
  auto counts = info[10].As<Napi::Uint32Array>();
  if (static_cast<int64_t>(tile.ElementLength()) < w * h * 3 || static_cast<int64_t>(colBin.ElementLength()) < colOffset + w ||
      static_cast<int64_t>(rowBin.ElementLength()) < rowOffset + h)
    throw Napi::RangeError::New(env, "accumulateBins: tile or bin maps shorter than width x height");
  const uint8_t* d = tile.Data();
  const int32_t* cb = colBin.Data() + colOffset;
  const int32_t* rb = rowBin.Data() + rowOffset;
  double* s = sums.Data();
  uint32_t* c = counts.Data();
  const int64_t cells = static_cast<int64_t>(counts.ElementLength());
  for (int64_t r = 0; r < h; ++r) {
    const int64_t ob = (static_cast<int64_t>(rb[r]) - rowBase) * outW;
    const uint8_t* p = d + r * w * 3;
    for (int64_t x = 0; x < w; ++x, p += 3) {
      const int64_t o = ob + cb[x];
      if (o < 0 || o >= cells || 3 * o + 2 >= static_cast<int64_t>(sums.ElementLength()))
        throw Napi::RangeError::New(env, "accumulateBins: a pixel maps outside sums/counts");
      s[3 * o] += p[0];
      s[3 * o + 1] += p[1];
      s[3 * o + 2] += p[2];
      ++c[o];
    }
  }
  return env.Undefined();
}

}  // namespace

void InitTissue(Napi::Env env, Napi::Object exports) {
  exports.Set("detectTissueMask", Napi::Function::New(env, DetectTissueMask));
  exports.Set("accumulateBins", Napi::Function::New(env, AccumulateBins));
}

}  // namespace flashslide
