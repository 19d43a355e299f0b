// Tissue detection on the slide overview (tissue_binding.cc).
#pragma once

#include <napi.h>

namespace flashslide {
void InitTissue(Napi::Env env, Napi::Object exports);
}  // namespace flashslide
