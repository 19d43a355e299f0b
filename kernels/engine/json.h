// flashslide engine: minimal JSON reader for safetensors headers and model configs.
//
// Scope: RFC 8259 values (objects, arrays, strings with escapes incl. \uXXXX and
// surrogate pairs, numbers, true/false/null). Numbers keep both a double and, when
// the literal is an integer that fits, an exact int64 -- safetensors offsets are
// u64 byte positions and must not go through a double. Objects keep insertion order
// and reject duplicate keys (the safetensors spec forbids them, and a config with a
// duplicated key is ambiguous). Nesting depth is capped so hostile input cannot
// blow the stack.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace flashslide {
namespace json {

struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool b = false;
  double num = 0.0;
  bool isInt = false;  // literal had no fraction/exponent and fits int64
  int64_t i64 = 0;
  std::string str;
  std::vector<Value> arr;
  std::vector<std::pair<std::string, Value>> obj;

  const Value* find(const std::string& key) const;  // objects only; nullptr if absent
  const char* kindName() const;
};

// Throws std::runtime_error with a byte position on malformed input; callers wrap it
// into flashslide::Error with the file name.
Value parse(const char* text, size_t len);
inline Value parse(const std::string& s) { return parse(s.data(), s.size()); }

}  // namespace json
}  // namespace flashslide
