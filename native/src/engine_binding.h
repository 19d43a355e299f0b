#pragma once
#include <napi.h>

namespace flashslide {
// Adds engineDevices and loadEngine (the ViT inference engine in kernels/) to the addon's exports.
void InitEngine(Napi::Env env, Napi::Object exports);
}  // namespace flashslide
