// flashslide engine: the one exception type every engine entry point throws.
//
// Errors carry a short machine-readable `code` (so the Node layer can map them to
// exit codes / JSON without parsing prose) and a message written for the person
// who has to fix the problem: it names the file or tensor involved and says what
// to do. Codes in use:
//   bad_file          file unreadable, truncated, malformed header or offsets
//   missing_tensor    a tensor the architecture needs is not in the checkpoint
//   shape_mismatch    a tensor has a shape that contradicts the rest of the model
//   unsupported_dtype a needed tensor is stored in a dtype we do not convert
//   unsupported_arch  the checkpoint/config describes a model we cannot run exactly
//   bad_config        the model config is missing a value or contradicts the weights
//   bad_input         image size / batch / pointer arguments are invalid
//   out_of_memory     an allocation for weights or activations failed
#pragma once

#include <stdexcept>
#include <string>

namespace flashslide {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const noexcept { return code_; }

 private:
  std::string code_;
};

}  // namespace flashslide
