// flashslide engine: safetensors reader (and a small writer used by tests/tools).
//
// File layout (huggingface/safetensors "Format"):
//   bytes [0, 8)        u64 little-endian N = header length
//   bytes [8, 8+N)      UTF-8 JSON: {"name": {"dtype": "F32", "shape": [..],
//                       "data_offsets": [BEGIN, END]}, ..., "__metadata__": {str: str}}
//                       may be right-padded with spaces
//   bytes [8+N, EOF)    tensor data; offsets are relative to 8+N, END exclusive,
//                       C-order, little-endian
// The reader validates the header the way the reference implementation does (header
// starts with '{', header <= 100 MB, no duplicate names, END-BEGIN == numel * dtype
// size, tensors tile the buffer with no holes/overlaps, 8+N+buffer_end == file size)
// so that a truncated download or a hand-edited file fails at open time with a
// message naming the file, not later with garbage numbers.
//
// Only the header is kept in memory; tensor bytes are read on demand, so loading a
// multi-GB checkpoint never holds the raw file and the float copy at the same time.
// All methods are const and open their own FILE*, so one reader may be shared by
// threads. Assumes a little-endian host (x86-64, aarch64).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace flashslide {

struct TensorInfo {
  std::string name;
  std::string dtype;            // exactly as in the header: "F32", "BF16", "U8", ...
  std::vector<int64_t> shape;   // empty = 0-rank scalar
  uint64_t begin = 0;           // byte offsets relative to the start of the data buffer
  uint64_t end = 0;
  int64_t numel() const;
  std::string shapeString() const;  // "[1, 197, 768]"
};

// Bits per element of a safetensors dtype name; 0 if the name is not a safetensors dtype.
int dtypeBits(const std::string& dtype);
// True for the dtypes readF32 converts (F32, F16, BF16).
bool isFloatDtype(const std::string& dtype);

class SafetensorsReader {
 public:
  // Opens and validates `path`. Throws Error("bad_file") with an actionable message.
  explicit SafetensorsReader(const std::string& path);

  const std::string& path() const { return path_; }
  uint64_t fileSize() const { return fileSize_; }
  // Sorted by data offset (the order of the bytes in the file).
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  const TensorInfo* find(const std::string& name) const;  // nullptr if absent
  const TensorInfo& get(const std::string& name) const;   // throws Error("missing_tensor")

  // F32 / F16 / BF16 -> float32. Other dtypes throw Error("unsupported_dtype").
  std::vector<float> readF32(const std::string& name) const;
  // U8 only; other dtypes throw Error("unsupported_dtype").
  std::vector<uint8_t> readU8(const std::string& name) const;
  // The tensor's bytes as stored.
  std::vector<uint8_t> readRaw(const TensorInfo& t) const;

 private:
  std::string path_;
  uint64_t fileSize_ = 0;
  uint64_t dataStart_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Convenience one-shot readers (used by the Node layer for `model check` io files).
struct TensorF32 {
  std::vector<int64_t> shape;
  std::vector<float> data;
};
struct TensorU8 {
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};
TensorF32 readTensorF32(const std::string& path, const std::string& name);
TensorU8 readTensorU8(const std::string& path, const std::string& name);

// Writer: tensors are laid out in the given order, header padded to 8 bytes.
// `dtype` is written verbatim (tests use it to produce unsupported dtypes).
struct TensorToWrite {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t bytes = 0;
};
void writeSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Half-precision conversions (exposed for tests and the CUDA backend's host side).
float halfToFloat(uint16_t h);
float bf16ToFloat(uint16_t h);

}  // namespace flashslide
