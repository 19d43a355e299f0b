// BF16 <-> float32 conversion of whole typed arrays, for the embed stage's part files (gigabytes
// of BF16 with a 1024-dim model). JavaScript converts one value at a time at ~150-200 M values/s;
// this runs at memory speed on all cores. Synchronous: a part file (tens of MB) takes
// milliseconds, less than handing it to the thread pool would.
//
// JS API (typed in worker/native/addon.ts):
//   bf16ToFloat32(src: Uint16Array, dst: Float32Array): void       dst.length >= src.length
//   float32ToBf16(src: Float32Array, dst: Uint16Array): void       round to nearest even; NaN
//                                                                  stays NaN (0x7fc0)
#include "bf16_binding.h"

#include <cstdint>
#include <cstring>
#include <string>

namespace flashslide {

namespace {

// Below this many values one thread is faster than waking the OpenMP team.
constexpr int64_t kParallelMin = 1 << 16;

uint16_t toBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN: keep it a quiet NaN
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

bool typedArrayOf(const Napi::Value& v, napi_typedarray_type type) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == type;
}

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

}  // namespace

void InitBf16(Napi::Env env, Napi::Object exports) {
  exports.Set("bf16ToFloat32", Napi::Function::New(env, Bf16ToFloat32));
  exports.Set("float32ToBf16", Napi::Function::New(env, Float32ToBf16));
}

}  // namespace flashslide
