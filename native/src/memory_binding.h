// Returning freed C-heap memory to the OS between large jobs (memory_binding.cc).
#pragma once

#include <napi.h>

namespace flashslide {
void InitMemory(Napi::Env env, Napi::Object exports);
}  // namespace flashslide
