// Bulk typed-array kernels for the embed stage's part files (gigabytes of BF16 with a 1024-dim
// model) and the aggregate stage's passes over them. JavaScript does these one value at a time
// (0.3-0.7 G values/s, on the event loop); these run at memory speed on all cores. Synchronous:
// one part file (tens of MB) takes milliseconds, less than handing it to the thread pool would.
// Each has a JavaScript twin that gives the same bits (worker/infer/bf16.ts,
// worker/score/row-stats.ts); tests compare them.
//
// JS API (typed in worker/native/addon.ts):
//   bf16ToFloat32(src: Uint16Array, dst: Float32Array): void       dst.length >= src.length
//   float32ToBf16(src: Float32Array, dst: Uint16Array): void       round to nearest even; NaN
//                                                                  stays NaN (0x7fc0)
//   addColumnSums(data: Float32Array, count, dim, sums: Float64Array): void
//       sums[j] += data[i, j] over i in order (per column, so the float64 rounding is the
//       JavaScript loop's exactly, whatever the thread count)
//   firstNonFinite(data: Float32Array): number                     index, or -1 when all finite
#include "array_binding.h"

#include "binding_util.h"

#include "engine/bf16.h"

#include <cstdint>
#include <cstring>
#include <string>

namespace flashslide {

namespace {

// Below this many values one thread is faster than waking the OpenMP team.
constexpr int64_t kParallelMin = 1 << 16;

Napi::Value Bf16ToFloat32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !typedArrayOf(info[0], napi_uint16_array) ||
      !typedArrayOf(info[1], napi_float32_array))
    throw Napi::TypeError::New(env, "bf16ToFloat32(src: Uint16Array, dst: Float32Array)");
  auto src = info[0].As<Napi::Uint16Array>();
  auto dst = info[1].As<Napi::Float32Array>();
  const int64_t n = static_cast<int64_t>(src.ElementLength());
  if (static_cast<int64_t>(dst.ElementLength()) < n)
    throw Napi::RangeError::New(env, "bf16ToFloat32: dst holds " + std::to_string(dst.ElementLength()) +
                                         " values, src has " + std::to_string(n));
  const uint16_t* s = src.Data();
  uint32_t* d = reinterpret_cast<uint32_t*>(dst.Data());
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<uint32_t>(s[i]) << 16;  // bf16 = top half of a float32
  return env.Undefined();
}

Napi::Value Float32ToBf16(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !typedArrayOf(info[0], napi_float32_array) ||
      !typedArrayOf(info[1], napi_uint16_array))
    throw Napi::TypeError::New(env, "float32ToBf16(src: Float32Array, dst: Uint16Array)");
  auto src = info[0].As<Napi::Float32Array>();
  auto dst = info[1].As<Napi::Uint16Array>();
  const int64_t n = static_cast<int64_t>(src.ElementLength());
  if (static_cast<int64_t>(dst.ElementLength()) < n)
    throw Napi::RangeError::New(env, "float32ToBf16: dst holds " + std::to_string(dst.ElementLength()) +
                                         " values, src has " + std::to_string(n));
  const float* s = src.Data();
  uint16_t* d = dst.Data();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) d[i] = toBf16(s[i]);
  return env.Undefined();
}

Napi::Value AddColumnSums(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4 || !typedArrayOf(info[0], napi_float32_array) || !typedArrayOf(info[3], napi_float64_array))
    throw Napi::TypeError::New(env, "addColumnSums(data: Float32Array, count: number, dim: number, sums: Float64Array)");
  auto data = info[0].As<Napi::Float32Array>();
  const int64_t count = checkedInt(info[1], "count", 0, int64_t(1) << 40);
  const int64_t dim = checkedInt(info[2], "dim", 1, int64_t(1) << 30);
  auto sums = info[3].As<Napi::Float64Array>();
  if (static_cast<int64_t>(data.ElementLength()) < count * dim || static_cast<int64_t>(sums.ElementLength()) < dim)
    throw Napi::RangeError::New(env, "addColumnSums: data must hold count x dim values and sums dim");
  const float* x = data.Data();
  double* out = sums.Data();
  // Columns split across threads, rows summed in order within each: bit-identical to the
  // row-by-row JavaScript loop, for any thread count.
  constexpr int64_t kCols = 16;
#pragma omp parallel for schedule(static) if (count * dim >= kParallelMin)
  for (int64_t c0 = 0; c0 < dim; c0 += kCols) {
    const int64_t c1 = c0 + kCols < dim ? c0 + kCols : dim;
    double acc[kCols];
    for (int64_t j = c0; j < c1; ++j) acc[j - c0] = out[j];
    for (int64_t i = 0; i < count; ++i) {
      const float* row = x + i * dim;
      for (int64_t j = c0; j < c1; ++j) acc[j - c0] += static_cast<double>(row[j]);
    }
    for (int64_t j = c0; j < c1; ++j) out[j] = acc[j - c0];
  }
  return env.Undefined();
}

Napi::Value FirstNonFinite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !typedArrayOf(info[0], napi_float32_array))
    throw Napi::TypeError::New(env, "firstNonFinite(data: Float32Array)");
  auto data = info[0].As<Napi::Float32Array>();
  const int64_t n = static_cast<int64_t>(data.ElementLength());
  const uint32_t* u = reinterpret_cast<const uint32_t*>(data.Data());
  int64_t first = n;
#pragma omp parallel for schedule(static) reduction(min : first) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    if ((u[i] & 0x7f800000u) == 0x7f800000u && i < first) first = i;  // exponent all ones: Inf or NaN
  return Napi::Number::New(env, static_cast<double>(first == n ? -1 : first));
}

}  // namespace

void InitArrays(Napi::Env env, Napi::Object exports) {
  exports.Set("bf16ToFloat32", Napi::Function::New(env, Bf16ToFloat32));
  exports.Set("float32ToBf16", Napi::Function::New(env, Float32ToBf16));
  exports.Set("addColumnSums", Napi::Function::New(env, AddColumnSums));
  exports.Set("firstNonFinite", Napi::Function::New(env, FirstNonFinite));
}

}  // namespace flashslide
