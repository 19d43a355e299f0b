// Entry point of flashslide.node. Each subsystem registers its own exports.
#include <napi.h>

#include "array_binding.h"
#include "engine_binding.h"
#include "jpeg_check_binding.h"
#include "memory_binding.h"
#include "openslide_binding.h"
#include "score_binding.h"
#include "tissue_binding.h"

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  flashslide::InitOpenSlide(env, exports);
  flashslide::InitEngine(env, exports);
  flashslide::InitScore(env, exports);
  flashslide::InitArrays(env, exports);
  flashslide::InitMemory(env, exports);
  flashslide::InitTissue(env, exports);
  flashslide::InitJpegCheck(env, exports);
  return exports;
}
}  // namespace

NODE_API_MODULE(flashslide, Init)
