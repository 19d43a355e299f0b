// Shared by the addon's bindings: engine failures (flashslide::Error and friends) caught on a
// worker thread become code + message, and a JS Error with that `code` on the main thread.
#pragma once

#include <napi.h>

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

}  // namespace flashslide
