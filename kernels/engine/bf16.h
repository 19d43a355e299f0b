// float32 -> bfloat16 as every part of flashslide writes it: round to nearest even, NaN kept a
// quiet NaN (0x7fc0), infinities and overflow to +-inf. The JavaScript twin is
// worker/infer/bf16.ts; the CUDA twin (vit_cuda.cu) uses the same bit operations, so the host,
// the addon and the GPU give identical bits for the same float.
#pragma once

#include <cstdint>
#include <cstring>

namespace flashslide {

inline float fromBf16(uint16_t b) {
  const uint32_t x = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

inline uint16_t toBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace flashslide
