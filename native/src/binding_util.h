// Shared by the addon's bindings: engine failures (flashslide::Error and friends) caught on a
// worker thread become code + message, and a JS Error with that `code` on the main thread.
#pragma once

#include <napi.h>

#include <cstdint>
#include <exception>
#include <new>
#include <string>

#include "engine/error.h"

namespace flashslide {

struct CaughtError {
  std::string code;
  std::string message;
};

// Runs `fn`, turning every engine failure into code + message for the JS side. `oomAdvice`
// completes the out-of-memory message with what the caller can shrink.
template <typename Fn>
bool capture(Fn&& fn, CaughtError& err, const char* oomAdvice = "use a smaller batch or region size") {
  try {
    fn();
    return true;
  } catch (const Error& e) {
    err = {e.code(), e.what()};
  } catch (const std::bad_alloc&) {
    err = {"out_of_memory", std::string("out of memory (host): ") + oomAdvice};
  } catch (const std::exception& e) {
    err = {"internal", e.what()};
  }
  return false;
}

inline Napi::Error toJsError(Napi::Env env, const CaughtError& err) {
  Napi::Error e = Napi::Error::New(env, err.message);
  e.Set("code", Napi::String::New(env, err.code));
  return e;
}

// A promise already rejected with code + message (argument errors found on the main thread).
inline Napi::Promise rejected(Napi::Env env, const std::string& code, const std::string& message) {
  auto d = Napi::Promise::Deferred::New(env);
  d.Reject(toJsError(env, {code, message}).Value());
  return d.Promise();
}

// Argument checks shared by the synchronous kernels (arrays, tissue).
inline bool typedArrayOf(const Napi::Value& v, napi_typedarray_type type) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == type;
}

// An integer argument in [lo, hi], or a TypeError/RangeError naming it.
inline int64_t checkedInt(const Napi::Value& v, const std::string& what, int64_t lo, int64_t hi) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), what + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != static_cast<double>(static_cast<int64_t>(d)))
    throw Napi::RangeError::New(v.Env(), what + " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
  return static_cast<int64_t>(d);
}

}  // namespace flashslide
