// float32 -> bfloat16 as every part of flashslide writes it: round to nearest even, NaN kept a
// quiet NaN (0x7fc0), infinities and overflow to +-inf. The JavaScript twin is
// worker/infer/bf16.ts. The rule itself, bf16FromFloatBits, also compiles for the device
// (elementwise.cu's gather kernel), so the host, the addon and the GPU give identical bits for
// the same float by construction.
#pragma once

#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define FS_HOST_DEVICE __host__ __device__
#else
#define FS_HOST_DEVICE
#endif

namespace flashslide {

// x: the float's bits. (Not __float2bfloat16_rn on the device: its NaN payloads differ.)
FS_HOST_DEVICE inline uint16_t bf16FromFloatBits(uint32_t x) {
  if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

inline float fromBf16(uint16_t b) {
  const uint32_t x = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

inline uint16_t toBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  return bf16FromFloatBits(x);
}

}  // namespace flashslide
