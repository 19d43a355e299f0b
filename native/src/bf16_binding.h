// BF16 <-> float32 conversion of whole typed arrays for the part files (bf16_binding.cc).
#pragma once

#include <napi.h>

namespace flashslide {
void InitBf16(Napi::Env env, Napi::Object exports);
}  // namespace flashslide
