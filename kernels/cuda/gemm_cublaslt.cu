// flashslide CUDA backend: GEMMs through cuBLASLt (the only file that needs cuBLAS).
//
// Row-major Y[M, N] = X[M, K] W[N, K]^T is, in cuBLAS's column-major terms,
//   Y^T (N x M, ld ldy) = op(A) * B  with  A = W viewed as col-major K x N (ld ldw), op = T,
//                                          B = X viewed as col-major K x M (ld ldx), op = N.
// This "TN" form is the one cuBLASLt's Hopper kernels favour, and the bias vector of the
// epilogue runs along D's rows, i.e. along N: the output features, as nn.Linear wants.
// Types: A/B bf16, compute and scale fp32, C/D bf16 or fp32; the bias has D's type (the
// cuBLASLt default). Epilogues used: BIAS, GELU_BIAS (cuBLASLt's GELU: the tanh form; its
// largest deviation from timm's exact erf GELU is ~5e-4, an eighth of one bf16 ulp at 1).
// With accumulate, beta = 1 and C = D = Y: in-place accumulation into the fp32 residual.
//
// Descriptors, layouts and the heuristic's algorithm are cached per shape: a forward has 5
// distinct shapes and every layer reuses them, so the heuristic runs once per shape per
// engine, not once per call. Only the bias pointer changes between calls.
#include <cublasLt.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "cuda_check.h"
#include "gemm.h"

namespace flashslide {
namespace cuda {

namespace {

constexpr size_t kWorkspaceBytes = 32u << 20;  // NVIDIA's recommendation for Hopper
constexpr int kCandidates = 8;                   // heuristic results timed by the autotune

void checkLt(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw Error("cuda_error", std::string("cuBLASLt ") + cublasLtGetStatusName(st) + " (" +
                                  cublasLtGetStatusString(st) + ") in " + what);
}
#define FS_LT(call) checkLt((call), #call)

using Key = std::tuple<int, int, int, int64_t, int64_t, int64_t, int, int, bool>;

struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool supported = false;
};

}  // namespace

struct Gemm::Impl {
  cublasLtHandle_t handle = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  void* workspace = nullptr;
  std::map<Key, Plan> plans;
  bool autotune = false;

  void dropPlans() {
    for (auto& kv : plans) {
      Plan& p = kv.second;
      if (p.a) cublasLtMatrixLayoutDestroy(p.a);
      if (p.b) cublasLtMatrixLayoutDestroy(p.b);
      if (p.c) cublasLtMatrixLayoutDestroy(p.c);
      if (p.op) cublasLtMatmulDescDestroy(p.op);
    }
    plans.clear();
  }

  // Median-of-3 time (ms) of one candidate on the real X, W, bias, output into `scratch`
  // (same shape and type as Y; for accumulate its contents are whatever it holds: only
  // the time matters). < 0 if the algorithm fails to launch.
  float timeAlgo(const GemmArgs& g, Plan& p, const cublasLtMatmulAlgo_t& algo, void* scratch, cudaStream_t stream,
                 cudaEvent_t e0, cudaEvent_t e1) {
    const float alpha = 1.f, beta = g.accumulate ? 1.f : 0.f;
    auto launch = [&] {
      return cublasLtMatmul(handle, p.op, &alpha, g.W, p.a, g.X, p.b, &beta, scratch, p.c, scratch, p.c, &algo,
                            workspace, kWorkspaceBytes, stream);
    };
    if (launch() != CUBLAS_STATUS_SUCCESS) return -1.f;  // also the warm-up
    float t[3];
    for (float& ti : t) {
      cudaEventRecord(e0, stream);
      if (launch() != CUBLAS_STATUS_SUCCESS) return -1.f;
      cudaEventRecord(e1, stream);
      if (cudaEventSynchronize(e1) != cudaSuccess) return -1.f;
      cudaEventElapsedTime(&ti, e0, e1);
    }
    if (t[0] > t[1]) std::swap(t[0], t[1]);
    if (t[1] > t[2]) std::swap(t[1], t[2]);
    if (t[0] > t[1]) std::swap(t[0], t[1]);
    return t[1];
  }

  ~Impl() {
    dropPlans();
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (handle) cublasLtDestroy(handle);
    if (workspace) cudaFree(workspace);
  }

  Plan& plan(const GemmArgs& g, cudaStream_t stream) {
    const Key key{g.M, g.N, g.K, g.ldx, g.ldw, g.ldy, int(g.out), int(g.epilogue), g.accumulate};
    auto it = plans.find(key);
    if (it != plans.end()) return it->second;
    Plan& p = plans[key];  // destroyed with the map even if a step below throws
    FS_LT(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t opT = CUBLAS_OP_T, opN = CUBLAS_OP_N;
    FS_LT(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof(opT)));
    FS_LT(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof(opN)));
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
    if (g.epilogue == GemmEpilogue::Bias) epi = CUBLASLT_EPILOGUE_BIAS;
    if (g.epilogue == GemmEpilogue::GeluBias) epi = CUBLASLT_EPILOGUE_GELU_BIAS;
    FS_LT(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    if (g.epilogue != GemmEpilogue::None) {
      // The heuristic may look at the bias pointer's alignment: give it the real one.
      const void* bias = g.bias;
      FS_LT(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    }
    const cudaDataType_t outType = g.out == GemmOut::F32 ? CUDA_R_32F : CUDA_R_16BF;
    FS_LT(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, uint64_t(g.K), uint64_t(g.N), g.ldw));
    FS_LT(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, uint64_t(g.K), uint64_t(g.M), g.ldx));
    FS_LT(cublasLtMatrixLayoutCreate(&p.c, outType, uint64_t(g.N), uint64_t(g.M), g.ldy));
    cublasLtMatmulHeuristicResult_t results[kCandidates];
    std::memset(results, 0, sizeof results);
    int found = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle, p.op, p.a, p.b, p.c, p.c, pref,
                                                             autotune ? kCandidates : 1, results, &found);
    if (st != CUBLAS_STATUS_SUCCESS && st != CUBLAS_STATUS_NOT_SUPPORTED)
      checkLt(st, "cublasLtMatmulAlgoGetHeuristic");
    if (st != CUBLAS_STATUS_SUCCESS) found = 0;
    int ok[kCandidates], nOk = 0;
    for (int i = 0; i < found; ++i)
      if (results[i].state == CUBLAS_STATUS_SUCCESS) ok[nOk++] = i;
    if (nOk == 0) return p;
    p.algo = results[ok[0]].algo;
    p.supported = true;
    if (nOk == 1) return p;
    // Autotune. Any failure along the way keeps the heuristic's first pick.
    const size_t elem = g.out == GemmOut::F32 ? 4 : 2;
    void* scratch = nullptr;
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    if (cudaStreamSynchronize(stream) == cudaSuccess &&
        cudaMalloc(&scratch, size_t(g.ldy) * size_t(g.M) * elem) == cudaSuccess &&
        cudaEventCreate(&e0) == cudaSuccess && cudaEventCreate(&e1) == cudaSuccess) {
      float best = -1.f;
      for (int j = 0; j < nOk; ++j) {
        const float t = timeAlgo(g, p, results[ok[j]].algo, scratch, stream, e0, e1);
        if (t >= 0.f && (best < 0.f || t < best)) {
          best = t;
          p.algo = results[ok[j]].algo;
        }
      }
    }
    cudaStreamSynchronize(stream);
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (scratch) cudaFree(scratch);
    cudaGetLastError();  // a failed candidate must not leave a sticky-looking error behind
    return p;
  }
};

Gemm::Gemm() : impl_(new Impl) {
  try {
    FS_LT(cublasLtCreate(&impl_->handle));
    FS_LT(cublasLtMatmulPreferenceCreate(&impl_->pref));
    const uint64_t ws = kWorkspaceBytes;
    FS_LT(cublasLtMatmulPreferenceSetAttribute(impl_->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                               sizeof(ws)));
    FS_CUDA_CHECK(cudaMalloc(&impl_->workspace, kWorkspaceBytes));
    if (const char* a = std::getenv("FLASHSLIDE_GEMM_AUTOTUNE")) impl_->autotune = std::string(a) == "1";
  } catch (...) {
    delete impl_;
    throw;
  }
}

Gemm::~Gemm() { delete impl_; }

size_t Gemm::workspaceBytes() const { return kWorkspaceBytes; }

void Gemm::setAutotune(bool on) {
  if (on == impl_->autotune) return;
  impl_->dropPlans();
  impl_->autotune = on;
}

bool Gemm::autotune() const { return impl_->autotune; }

bool Gemm::run(const GemmArgs& g, cudaStream_t stream) {
  if (g.M <= 0 || g.N <= 0 || g.K <= 0) throw Error("bad_input", "GEMM with an empty dimension");
  if (g.epilogue != GemmEpilogue::None && !g.bias) throw Error("bad_input", "GEMM bias epilogue without a bias");
  Plan& p = impl_->plan(g, stream);
  if (!p.supported) return false;
  if (g.epilogue != GemmEpilogue::None) {
    const void* bias = g.bias;
    FS_LT(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  }
  const float alpha = 1.f, beta = g.accumulate ? 1.f : 0.f;
  FS_LT(cublasLtMatmul(impl_->handle, p.op, &alpha, g.W, p.a, g.X, p.b, &beta, g.Y, p.c, g.Y, p.c, &p.algo,
                       impl_->workspace, kWorkspaceBytes, stream));
  return true;
}

}  // namespace cuda
}  // namespace flashslide
