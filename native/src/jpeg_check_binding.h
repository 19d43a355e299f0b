// The entropy check of a stored JPEG tile, on the thread pool (jpeg_check_binding.cc).
#pragma once

#include <napi.h>

namespace flashslide {
void InitJpegCheck(Napi::Env env, Napi::Object exports);
}  // namespace flashslide
