// Bulk typed-array kernels for the part files and the scoring passes (array_binding.cc).
#pragma once

#include <napi.h>

namespace flashslide {
void InitArrays(Napi::Env env, Napi::Object exports);
}  // namespace flashslide
