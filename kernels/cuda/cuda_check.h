// flashslide CUDA backend: error checking shared by every host-side CUDA file.
//
// Every runtime call and every launch is checked: a kernel that silently failed leaves the
// previous contents of its output buffer behind, which can look like a plausible result.
// Failures become flashslide::Error so the Node layer reports them like any engine error:
// out_of_memory for allocation failures (the caller can retry with a smaller batch), and
// cuda_error for everything else, naming the call and the site.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "../engine/error.h"

namespace flashslide {
namespace cuda {

[[noreturn]] inline void throwCuda(cudaError_t e, const char* what, const char* file, int line) {
  const std::string where = std::string(what) + " at " + file + ":" + std::to_string(line);
  if (e == cudaErrorMemoryAllocation)
    throw Error("out_of_memory", "CUDA out of device memory in " + where +
                                     "; use a smaller batch or tile");
  throw Error("cuda_error", std::string("CUDA error ") + cudaGetErrorName(e) + " (" +
                                cudaGetErrorString(e) + ") in " + where);
}

}  // namespace cuda
}  // namespace flashslide

#define FS_CUDA_CHECK(call)                                                        \
  do {                                                                             \
    cudaError_t fs_err_ = (call);                                                  \
    if (fs_err_ != cudaSuccess)                                                    \
      ::flashslide::cuda::throwCuda(fs_err_, #call, __FILE__, __LINE__);           \
  } while (0)

// After a <<<>>> launch: catches bad launch configurations (too much shared memory, grid too
// large) at the launch site instead of at the next synchronising call.
#define FS_CUDA_CHECK_LAUNCH(name)                                                 \
  do {                                                                             \
    cudaError_t fs_err_ = cudaGetLastError();                                      \
    if (fs_err_ != cudaSuccess)                                                    \
      ::flashslide::cuda::throwCuda(fs_err_, "launch of " name, __FILE__, __LINE__); \
  } while (0)
