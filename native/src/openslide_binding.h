#pragma once
#include <napi.h>

namespace flashslide {
// Adds openslideVersion, openslideDetectVendor and the OpenSlide class to the addon's exports.
void InitOpenSlide(Napi::Env env, Napi::Object exports);
}  // namespace flashslide
