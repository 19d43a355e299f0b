// flashslide engine: safetensors reader/writer. See safetensors.h for the format and
// the validation rules; every failure path says which file and what to do about it.
#include "safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>

#include "error.h"
#include "json.h"

namespace flashslide {

namespace {

constexpr uint64_t kMaxHeader = 100000000;  // same cap as the reference implementation

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

FilePtr openOrThrow(const std::string& path, const char* mode) {
  std::FILE* f = std::fopen(path.c_str(), mode);
  if (!f)
    throw Error("bad_file", path + ": cannot open: " + std::strerror(errno) +
                                " (check the path and file permissions)");
  return FilePtr(f);
}

void readAt(std::FILE* f, const std::string& path, uint64_t offset, void* dst, size_t n) {
  if (n == 0) return;
  if (fseeko(f, static_cast<off_t>(offset), SEEK_SET) != 0 || std::fread(dst, 1, n, f) != n)
    throw Error("bad_file", path + ": read of " + std::to_string(n) + " bytes at offset " +
                                std::to_string(offset) +
                                " failed (file changed or truncated while loading?)");
}

[[noreturn]] void badHeader(const std::string& path, const std::string& what) {
  throw Error("bad_file", path + ": invalid safetensors header: " + what +
                              " (the file is corrupt or not a safetensors file; re-download or "
                              "re-convert the checkpoint)");
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorInfo::shapeString() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int dtypeBits(const std::string& d) {
  static const std::pair<const char*, int> table[] = {
      {"BOOL", 8},         {"U8", 8},          {"I8", 8},          {"F8_E5M2", 8},
      {"F8_E4M3", 8},      {"F8_E8M0", 8},     {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8},
      {"I16", 16},         {"U16", 16},        {"F16", 16},        {"BF16", 16},
      {"I32", 32},         {"U32", 32},        {"F32", 32},        {"C64", 64},
      {"F64", 64},         {"I64", 64},        {"U64", 64},        {"F4", 4},
      {"F6_E2M3", 6},      {"F6_E3M2", 6}};
  for (const auto& e : table)
    if (d == e.first) return e.second;
  return 0;
}

bool isFloatDtype(const std::string& d) { return d == "F32" || d == "F16" || d == "BF16"; }

float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t man = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal half: renormalise into a normal float
      int e = -1;
      do {
        ++e;
        man <<= 1;
      } while ((man & 0x400) == 0);
      bits = sign | (uint32_t(127 - 15 - e) << 23) | ((man & 0x3FF) << 13);
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (man << 13);
  } else {
    bits = sign | ((exp + (127 - 15)) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16ToFloat(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

SafetensorsReader::SafetensorsReader(const std::string& path) : path_(path) {
  FilePtr f = openOrThrow(path, "rb");
  if (fseeko(f.get(), 0, SEEK_END) != 0)
    throw Error("bad_file", path + ": cannot determine file size (is it a regular file?)");
  fileSize_ = static_cast<uint64_t>(ftello(f.get()));
  if (fileSize_ < 8)
    throw Error("bad_file", path + ": file is " + std::to_string(fileSize_) +
                                " bytes, too small to be a safetensors file (re-download or "
                                "re-convert the checkpoint)");
  unsigned char lenBytes[8];
  readAt(f.get(), path, 0, lenBytes, 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | lenBytes[i];
  if (n > kMaxHeader)
    badHeader(path, "header length field is " + std::to_string(n) + " bytes (limit " +
                        std::to_string(kMaxHeader) + "); this is probably not a safetensors file" +
                        (lenBytes[0] == 'P' && lenBytes[1] == 'K'
                             ? " but a zip/PyTorch .pt/.bin checkpoint -- convert it to safetensors"
                             : ""));
  if (8 + n > fileSize_)
    throw Error("bad_file", path + ": truncated: header says it is " + std::to_string(n) +
                                " bytes but the file has only " + std::to_string(fileSize_ - 8) +
                                " bytes after the length field (re-download or re-convert the "
                                "checkpoint)");
  std::string header(n, '\0');
  readAt(f.get(), path, 8, header.data(), n);
  if (n == 0 || header[0] != '{') badHeader(path, "header does not start with '{'");
  dataStart_ = 8 + n;

  json::Value root;
  try {
    root = json::parse(header);
  } catch (const std::exception& e) {
    badHeader(path, e.what());
  }
  if (root.kind != json::Value::Kind::Object) badHeader(path, "header is not a JSON object");

  for (const auto& kv : root.obj) {
    const std::string& name = kv.first;
    const json::Value& v = kv.second;
    if (name == "__metadata__") {
      if (v.kind != json::Value::Kind::Object) badHeader(path, "__metadata__ is not an object");
      for (const auto& m : v.obj) {
        if (m.second.kind != json::Value::Kind::String)
          badHeader(path, "__metadata__ value for \"" + m.first + "\" is not a string");
        metadata_[m.first] = m.second.str;
      }
      continue;
    }
    if (v.kind != json::Value::Kind::Object) badHeader(path, "entry \"" + name + "\" is not an object");
    const json::Value* dt = v.find("dtype");
    const json::Value* sh = v.find("shape");
    const json::Value* off = v.find("data_offsets");
    if (!dt || dt->kind != json::Value::Kind::String)
      badHeader(path, "tensor \"" + name + "\" has no string \"dtype\"");
    if (!sh || sh->kind != json::Value::Kind::Array)
      badHeader(path, "tensor \"" + name + "\" has no array \"shape\"");
    if (!off || off->kind != json::Value::Kind::Array || off->arr.size() != 2)
      badHeader(path, "tensor \"" + name + "\" has no [BEGIN, END] \"data_offsets\"");
    TensorInfo t;
    t.name = name;
    t.dtype = dt->str;
    int bits = dtypeBits(t.dtype);
    if (bits == 0) badHeader(path, "tensor \"" + name + "\" has unknown dtype \"" + t.dtype + "\"");
    uint64_t numel = 1;
    for (const auto& d : sh->arr) {
      if (d.kind != json::Value::Kind::Number || !d.isInt || d.i64 < 0)
        badHeader(path, "tensor \"" + name + "\" has a shape entry that is not a non-negative integer");
      t.shape.push_back(d.i64);
      if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d.i64), &numel))
        badHeader(path, "tensor \"" + name + "\" shape overflows");
    }
    for (int k = 0; k < 2; ++k)
      if (off->arr[k].kind != json::Value::Kind::Number || !off->arr[k].isInt || off->arr[k].i64 < 0)
        badHeader(path, "tensor \"" + name + "\" data_offsets are not non-negative integers");
    t.begin = static_cast<uint64_t>(off->arr[0].i64);
    t.end = static_cast<uint64_t>(off->arr[1].i64);
    if (t.end < t.begin) badHeader(path, "tensor \"" + name + "\" has END < BEGIN");
    uint64_t nbits;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(bits), &nbits) || nbits % 8 != 0 ||
        nbits / 8 != t.end - t.begin)
      badHeader(path, "tensor \"" + name + "\" (" + t.dtype + " " + t.shapeString() + ") needs " +
                          std::to_string(nbits / 8) + " bytes but its data_offsets span " +
                          std::to_string(t.end - t.begin));
    tensors_.push_back(std::move(t));
  }

  std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expect = 0;
  for (const auto& t : tensors_) {
    if (t.begin != expect)
      badHeader(path, "tensor \"" + t.name + "\" starts at byte " + std::to_string(t.begin) +
                          " of the data buffer but the previous tensor ends at " +
                          std::to_string(expect) + " (holes or overlapping tensors)");
    expect = t.end;
  }
  uint64_t have = fileSize_ - dataStart_;
  if (expect > have)
    throw Error("bad_file", path + ": truncated: header says " + std::to_string(expect) +
                                " bytes of tensor data but the file has " + std::to_string(have) +
                                " (re-download or re-convert the checkpoint)");
  if (expect < have)
    throw Error("bad_file", path + ": " + std::to_string(have - expect) +
                                " unexpected bytes after the last tensor (header says " +
                                std::to_string(expect) + " bytes of tensor data, file has " +
                                std::to_string(have) + "); the file is corrupt");
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

const TensorInfo* SafetensorsReader::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsReader::get(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t)
    throw Error("missing_tensor", path_ + ": missing tensor \"" + name + "\" (file has " +
                                      std::to_string(tensors_.size()) + " tensors)");
  return *t;
}

std::vector<uint8_t> SafetensorsReader::readRaw(const TensorInfo& t) const {
  std::vector<uint8_t> out;
  try {
    out.resize(t.end - t.begin);
  } catch (const std::bad_alloc&) {
    throw Error("out_of_memory", path_ + ": cannot allocate " + std::to_string(t.end - t.begin) +
                                     " bytes for tensor \"" + t.name + "\"");
  }
  FilePtr f = openOrThrow(path_, "rb");
  readAt(f.get(), path_, dataStart_ + t.begin, out.data(), out.size());
  return out;
}

std::vector<float> SafetensorsReader::readF32(const std::string& name) const {
  const TensorInfo& t = get(name);
  if (!isFloatDtype(t.dtype))
    throw Error("unsupported_dtype", path_ + ": tensor \"" + name + "\" has dtype " + t.dtype +
                                         "; only F32, F16 and BF16 weights are supported (re-export "
                                         "the checkpoint in one of those)");
  std::vector<uint8_t> raw = readRaw(t);
  std::vector<float> out;
  try {
    out.resize(static_cast<size_t>(t.numel()));
  } catch (const std::bad_alloc&) {
    throw Error("out_of_memory", path_ + ": cannot allocate float copy of tensor \"" + name + "\"");
  }
  if (t.dtype == "F32") {
    std::memcpy(out.data(), raw.data(), raw.size());
  } else {
    bool bf = t.dtype == "BF16";
    for (size_t i = 0; i < out.size(); ++i) {
      uint16_t h;
      std::memcpy(&h, raw.data() + 2 * i, 2);
      out[i] = bf ? bf16ToFloat(h) : halfToFloat(h);
    }
  }
  return out;
}

std::vector<uint8_t> SafetensorsReader::readU8(const std::string& name) const {
  const TensorInfo& t = get(name);
  if (t.dtype != "U8")
    throw Error("unsupported_dtype", path_ + ": tensor \"" + name + "\" has dtype " + t.dtype +
                                         ", expected U8");
  return readRaw(t);
}

TensorF32 readTensorF32(const std::string& path, const std::string& name) {
  SafetensorsReader r(path);
  TensorF32 out;
  out.shape = r.get(name).shape;
  out.data = r.readF32(name);
  return out;
}

TensorU8 readTensorU8(const std::string& path, const std::string& name) {
  SafetensorsReader r(path);
  TensorU8 out;
  out.shape = r.get(name).shape;
  out.data = r.readU8(name);
  return out;
}

namespace {
std::string jsonEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o += c;
    }
  }
  return o;
}
}  // namespace

void writeSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::ostringstream h;
  h << '{';
  bool first = true;
  if (!metadata.empty()) {
    h << "\"__metadata__\":{";
    bool f2 = true;
    for (const auto& kv : metadata) {
      h << (f2 ? "" : ",") << '"' << jsonEscape(kv.first) << "\":\"" << jsonEscape(kv.second) << '"';
      f2 = false;
    }
    h << '}';
    first = false;
  }
  uint64_t off = 0;
  for (const auto& t : tensors) {
    h << (first ? "" : ",") << '"' << jsonEscape(t.name) << "\":{\"dtype\":\"" << t.dtype
      << "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) h << (i ? "," : "") << t.shape[i];
    h << "],\"data_offsets\":[" << off << ',' << off + t.bytes << "]}";
    off += t.bytes;
    first = false;
  }
  h << '}';
  std::string header = h.str();
  while ((8 + header.size()) % 8 != 0) header += ' ';
  FilePtr f = openOrThrow(path, "wb");
  unsigned char len[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, f.get()) == 8 &&
            std::fwrite(header.data(), 1, header.size(), f.get()) == header.size();
  for (const auto& t : tensors)
    ok = ok && (t.bytes == 0 || std::fwrite(t.data, 1, t.bytes, f.get()) == t.bytes);
  if (!ok || std::fflush(f.get()) != 0)
    throw Error("bad_file", path + ": write failed: " + std::strerror(errno) + " (disk full?)");
}

}  // namespace flashslide
