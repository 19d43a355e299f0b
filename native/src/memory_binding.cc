// releaseFreeMemory(): hand the C heap's free pages back to the OS (glibc malloc_trim).
// limitMallocArenas(n): at most n malloc arenas from now on (glibc mallopt M_ARENA_MAX).
//
// Why: libvips (through sharp and our slide readers) decodes on its worker threads, and glibc
// gives each thread its own malloc arena. Memory freed there stays mapped in that arena, so a
// process that renders one large report after another (a batch of PDFs) grows by the arenas'
// leftovers although nothing is live. Trimming between slides keeps a batch at the memory of
// one slide; capping the arenas (before the threads first allocate) keeps the peak there too.
// Elsewhere (musl, macOS) both do nothing and return false.
#include "memory_binding.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace flashslide {

namespace {
Napi::Value ReleaseFreeMemory(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Value LimitMallocArenas(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "limitMallocArenas(n): n must be a number");
  const int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) throw Napi::RangeError::New(info.Env(), "limitMallocArenas(n): n must be at least 1");
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), mallopt(M_ARENA_MAX, n) == 1);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}
}  // namespace

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("releaseFreeMemory", Napi::Function::New(env, ReleaseFreeMemory));
  exports.Set("limitMallocArenas", Napi::Function::New(env, LimitMallocArenas));
}

}  // namespace flashslide
