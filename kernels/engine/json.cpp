// flashslide engine: minimal recursive-descent JSON reader (see json.h for scope).
#include "json.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace flashslide {
namespace json {

const Value* Value::find(const std::string& key) const {
  if (kind != Kind::Object) return nullptr;
  for (const auto& kv : obj)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const char* Value::kindName() const {
  switch (kind) {
    case Kind::Null: return "null";
    case Kind::Bool: return "bool";
    case Kind::Number: return "number";
    case Kind::String: return "string";
    case Kind::Array: return "array";
    case Kind::Object: return "object";
  }
  return "?";
}

namespace {

constexpr int kMaxDepth = 64;

class Parser {
 public:
  Parser(const char* s, size_t n) : s_(s), n_(n) {}

  Value parseDocument() {
    Value v = parseValue(0);
    skipWs();
    if (p_ != n_) fail("unexpected trailing characters");
    return v;
  }

 private:
  const char* s_;
  size_t n_;
  size_t p_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("JSON error at byte " + std::to_string(p_) + ": " + what);
  }

  void skipWs() {
    while (p_ < n_ && (s_[p_] == ' ' || s_[p_] == '\t' || s_[p_] == '\n' || s_[p_] == '\r')) ++p_;
  }

  bool consumeLiteral(const char* lit) {
    size_t l = std::strlen(lit);
    if (n_ - p_ >= l && std::memcmp(s_ + p_, lit, l) == 0) {
      p_ += l;
      return true;
    }
    return false;
  }

  Value parseValue(int depth) {
    if (depth > kMaxDepth) fail("nesting too deep");
    skipWs();
    if (p_ >= n_) fail("unexpected end of input");
    char c = s_[p_];
    Value v;
    if (c == '{') {
      v.kind = Value::Kind::Object;
      ++p_;
      skipWs();
      if (p_ < n_ && s_[p_] == '}') { ++p_; return v; }
      for (;;) {
        skipWs();
        if (p_ >= n_ || s_[p_] != '"') fail("expected a string key");
        std::string key = parseString();
        for (const auto& kv : v.obj)
          if (kv.first == key) fail("duplicate key \"" + key + "\"");
        skipWs();
        if (p_ >= n_ || s_[p_] != ':') fail("expected ':'");
        ++p_;
        v.obj.emplace_back(std::move(key), parseValue(depth + 1));
        skipWs();
        if (p_ < n_ && s_[p_] == ',') { ++p_; continue; }
        if (p_ < n_ && s_[p_] == '}') { ++p_; break; }
        fail("expected ',' or '}'");
      }
    } else if (c == '[') {
      v.kind = Value::Kind::Array;
      ++p_;
      skipWs();
      if (p_ < n_ && s_[p_] == ']') { ++p_; return v; }
      for (;;) {
        v.arr.push_back(parseValue(depth + 1));
        skipWs();
        if (p_ < n_ && s_[p_] == ',') { ++p_; continue; }
        if (p_ < n_ && s_[p_] == ']') { ++p_; break; }
        fail("expected ',' or ']'");
      }
    } else if (c == '"') {
      v.kind = Value::Kind::String;
      v.str = parseString();
    } else if (consumeLiteral("true")) {
      v.kind = Value::Kind::Bool;
      v.b = true;
    } else if (consumeLiteral("false")) {
      v.kind = Value::Kind::Bool;
    } else if (consumeLiteral("null")) {
      v.kind = Value::Kind::Null;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      parseNumber(v);
    } else {
      fail(std::string("unexpected character '") + c + "'");
    }
    return v;
  }

  void parseNumber(Value& v) {
    size_t start = p_;
    bool integral = true;
    if (s_[p_] == '-') ++p_;
    if (p_ >= n_ || !(s_[p_] >= '0' && s_[p_] <= '9')) fail("bad number");
    while (p_ < n_ && s_[p_] >= '0' && s_[p_] <= '9') ++p_;
    if (p_ < n_ && s_[p_] == '.') {
      integral = false;
      ++p_;
      if (p_ >= n_ || !(s_[p_] >= '0' && s_[p_] <= '9')) fail("bad number fraction");
      while (p_ < n_ && s_[p_] >= '0' && s_[p_] <= '9') ++p_;
    }
    if (p_ < n_ && (s_[p_] == 'e' || s_[p_] == 'E')) {
      integral = false;
      ++p_;
      if (p_ < n_ && (s_[p_] == '+' || s_[p_] == '-')) ++p_;
      if (p_ >= n_ || !(s_[p_] >= '0' && s_[p_] <= '9')) fail("bad number exponent");
      while (p_ < n_ && s_[p_] >= '0' && s_[p_] <= '9') ++p_;
    }
    // strtod/strtoll need a terminated buffer; the header is not NUL-terminated.
    std::string lit(s_ + start, p_ - start);
    v.kind = Value::Kind::Number;
    v.num = std::strtod(lit.c_str(), nullptr);
    if (integral) {
      errno = 0;
      long long x = std::strtoll(lit.c_str(), nullptr, 10);
      if (errno == 0) {
        v.isInt = true;
        v.i64 = x;
      }
    }
  }

  unsigned hex4() {
    if (n_ - p_ < 4) fail("truncated \\u escape");
    unsigned u = 0;
    for (int k = 0; k < 4; ++k) {
      char h = s_[p_++];
      u <<= 4;
      if (h >= '0' && h <= '9') u |= unsigned(h - '0');
      else if (h >= 'a' && h <= 'f') u |= unsigned(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') u |= unsigned(h - 'A' + 10);
      else fail("bad hex digit in \\u escape");
    }
    return u;
  }

  static void appendUtf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  std::string parseString() {
    ++p_;  // opening quote
    std::string out;
    for (;;) {
      if (p_ >= n_) fail("unterminated string");
      char c = s_[p_++];
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') { out += c; continue; }
      if (p_ >= n_) fail("unterminated escape");
      char e = s_[p_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (n_ - p_ < 6 || s_[p_] != '\\' || s_[p_ + 1] != 'u') fail("unpaired surrogate");
            p_ += 2;
            unsigned lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("bad low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("unpaired surrogate");
          }
          appendUtf8(out, cp);
          break;
        }
        default: fail(std::string("bad escape \\") + e);
      }
    }
    return out;
  }
};

}  // namespace

Value parse(const char* text, size_t len) { return Parser(text, len).parseDocument(); }

}  // namespace json
}  // namespace flashslide
