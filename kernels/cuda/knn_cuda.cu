// flashslide CUDA backend: nearest-neighbour distances (see knn_cuda.h).
//
// Row-major S[m, nb] = Q[m, K] B[nb, K]^T is, in cuBLAS's column-major terms,
//   S^T (nb x m, ld ldS) = op(A) * B  with  A = bank block viewed col-major K x nb (ld ld), op = T,
//                                           B = queries viewed col-major K x m (ld ld),     op = N,
// the same "TN" form as gemm_cublaslt.cu, here with every type CUDA_R_32F and the compute type
// CUBLAS_COMPUTE_32F (plain fp32 FMA; TF32 would need CUBLAS_COMPUTE_32F_FAST_TF32). Row
// strides are padded to a multiple of 4 floats (zeros) and bank blocks are multiples of 16 rows,
// so every operand pointer is 256-byte aligned: cuBLASLt's heuristic assumes that alignment
// unless told otherwise (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*, default 256 bytes).
// The GEMM and the row minimum are two launches on one stream: S is written once and read
// once (2 x 128 MiB per block at the default sizes, ~0.1 ms on an H100) next to a GEMM of
// 2 x 4096 x 8192 x dim FLOP, so fusing them would save little.
#include "knn_cuda.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "../cpu/knn_cpu.h"
#include "cuda_check.h"

namespace flashslide {
namespace cuda {

namespace {

constexpr size_t kWorkspaceBytes = 4u << 20;  // plain fp32 GEMMs need little or none
constexpr int kRowMinThreads = 256;

void checkLt(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw Error("cuda_error", std::string("cuBLASLt ") + cublasLtGetStatusName(st) + " (" +
                                  cublasLtGetStatusString(st) + ") in " + what);
}
#define FS_LT(call) checkLt((call), #call)

// best[i] = min(best[i] (unless first), min_j bankNorm[j] - 2 s[i, j]) for the block's m rows;
// one thread block per query row.
__global__ void rowMinKernel(const float* __restrict__ s, int64_t ldS, int nb, const float* __restrict__ bankNorm,
                             float* __restrict__ best, int first) {
  const float* row = s + static_cast<int64_t>(blockIdx.x) * ldS;
  float m = INFINITY;
  for (int j = threadIdx.x; j < nb; j += blockDim.x) m = fminf(m, bankNorm[j] - 2.0f * row[j]);
  for (int o = 16; o > 0; o >>= 1) m = fminf(m, __shfl_xor_sync(0xffffffffu, m, o));
  __shared__ float warpMin[kRowMinThreads / 32];
  if ((threadIdx.x & 31) == 0) warpMin[threadIdx.x >> 5] = m;
  __syncthreads();
  if (threadIdx.x < 32) {
    m = threadIdx.x < kRowMinThreads / 32 ? warpMin[threadIdx.x] : INFINITY;
    for (int o = 16; o > 0; o >>= 1) m = fminf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (threadIdx.x == 0) best[blockIdx.x] = first ? m : fminf(best[blockIdx.x], m);
  }
}

struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

}  // namespace

struct CudaNearestIndex::Impl {
  KnnCudaOptions options;
  int64_t size = 0;
  int dim = 0, ld = 0;
  std::vector<double> center;
  float* dBank = nullptr;      // [size, ld] centred
  float* dBankNorm = nullptr;  // [size] |b|^2 (float32)
  int64_t capRows = 0;         // query rows the buffers below hold
  int64_t bankBlock = 0;       // bank rows per GEMM: a multiple of 16, or the whole bank
  int64_t ldS = 0;             // row stride of S: bankBlock rounded up to 4 floats
  float* dQ = nullptr;         // [capRows, ld]
  float* dS = nullptr;         // [capRows, ldS]
  float* dBest = nullptr;      // [capRows]
  float* hQ = nullptr;         // pinned [capRows, ld]
  float* hBest = nullptr;      // pinned [capRows]
  std::vector<double> qNorm;
  cudaStream_t stream = nullptr;
  cublasLtHandle_t handle = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  void* workspace = nullptr;
  std::map<std::pair<int64_t, int64_t>, Plan> plans;  // (m, nb): at most 4 shapes per search
  std::mutex mu;

  ~Impl() {
    for (auto& kv : plans) {
      Plan& p = kv.second;
      if (p.a) cublasLtMatrixLayoutDestroy(p.a);
      if (p.b) cublasLtMatrixLayoutDestroy(p.b);
      if (p.c) cublasLtMatrixLayoutDestroy(p.c);
      if (p.op) cublasLtMatmulDescDestroy(p.op);
    }
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (handle) cublasLtDestroy(handle);
    for (float* p : {dBank, dBankNorm, dQ, dS, dBest}) cudaFree(p);
    if (workspace) cudaFree(workspace);
    cudaFreeHost(hQ);
    cudaFreeHost(hBest);
    if (stream) cudaStreamDestroy(stream);
  }

  void ensureRows(int64_t rows) {
    if (rows <= capRows) return;
    for (float** p : {&dQ, &dS, &dBest}) {
      cudaFree(*p);
      *p = nullptr;
    }
    cudaFreeHost(hQ);
    cudaFreeHost(hBest);
    hQ = hBest = nullptr;
    capRows = 0;
    FS_CUDA_CHECK(cudaMalloc(&dQ, size_t(rows) * ld * sizeof(float)));
    FS_CUDA_CHECK(cudaMalloc(&dS, size_t(rows) * ldS * sizeof(float)));
    FS_CUDA_CHECK(cudaMalloc(&dBest, size_t(rows) * sizeof(float)));
    FS_CUDA_CHECK(cudaMallocHost(&hQ, size_t(rows) * ld * sizeof(float)));
    FS_CUDA_CHECK(cudaMallocHost(&hBest, size_t(rows) * sizeof(float)));
    qNorm.resize(size_t(rows));
    capRows = rows;
  }

  Plan& plan(int64_t m, int64_t nb) {
    auto it = plans.find({m, nb});
    if (it != plans.end()) return it->second;
    Plan& p = plans[{m, nb}];  // destroyed with the map even if a step below throws
    FS_LT(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t opT = CUBLAS_OP_T, opN = CUBLAS_OP_N;
    FS_LT(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof(opT)));
    FS_LT(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof(opN)));
    FS_LT(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_32F, uint64_t(dim), uint64_t(nb), ld));
    FS_LT(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_32F, uint64_t(dim), uint64_t(m), ld));
    FS_LT(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_32F, uint64_t(nb), uint64_t(m), ldS));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    FS_LT(cublasLtMatmulAlgoGetHeuristic(handle, p.op, p.a, p.b, p.c, p.c, pref, 1, &result, &found));
    if (found < 1 || result.state != CUBLAS_STATUS_SUCCESS)
      throw Error("cuda_error", "cuBLASLt has no fp32 GEMM algorithm for the nearest-neighbour block " +
                                    std::to_string(m) + " x " + std::to_string(nb) + " x " + std::to_string(dim));
    p.algo = result.algo;
    return p;
  }
};

CudaNearestIndex::CudaNearestIndex(const float* bank, int64_t size, int dim, KnnCudaOptions options)
    : impl_(new Impl) {
  Impl& s = *impl_;
  if (size < 1) throw Error("bad_input", "nearest-neighbour search needs a non-empty bank");
  if (dim < 1) throw Error("bad_input", "nearest-neighbour search needs dim >= 1, got " + std::to_string(dim));
  if (!bank) throw Error("bad_input", "nearest-neighbour search: null bank");
  if (options.queryBlock < 1 || options.bankBlock < 1) throw Error("bad_input", "kNN block sizes must be >= 1");
  s.options = options;
  s.size = size;
  s.dim = dim;
  s.ld = (dim + 3) / 4 * 4;
  s.bankBlock = std::min<int64_t>((int64_t(options.bankBlock) + 15) / 16 * 16, size);
  s.ldS = (s.bankBlock + 3) / 4 * 4;
  s.center = knnColumnMean(bank, size, dim);
  const CenteredRows rows = knnPrepareRows(bank, size, dim, s.center.data(), s.ld);
  std::vector<float> norms(static_cast<size_t>(size));
  for (int64_t j = 0; j < size; ++j) norms[j] = static_cast<float>(rows.sqNorms[j]);
  FS_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
  FS_CUDA_CHECK(cudaMalloc(&s.dBank, rows.data.size() * sizeof(float)));
  FS_CUDA_CHECK(cudaMalloc(&s.dBankNorm, norms.size() * sizeof(float)));
  FS_CUDA_CHECK(cudaMemcpy(s.dBank, rows.data.data(), rows.data.size() * sizeof(float), cudaMemcpyHostToDevice));
  FS_CUDA_CHECK(cudaMemcpy(s.dBankNorm, norms.data(), norms.size() * sizeof(float), cudaMemcpyHostToDevice));
  FS_LT(cublasLtCreate(&s.handle));
  FS_LT(cublasLtMatmulPreferenceCreate(&s.pref));
  const uint64_t ws = kWorkspaceBytes;
  FS_LT(cublasLtMatmulPreferenceSetAttribute(s.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  FS_CUDA_CHECK(cudaMalloc(&s.workspace, kWorkspaceBytes));
}

CudaNearestIndex::~CudaNearestIndex() = default;

int64_t CudaNearestIndex::size() const { return impl_->size; }
int CudaNearestIndex::dim() const { return impl_->dim; }

void CudaNearestIndex::search(const float* queries, int64_t n, float* out) {
  if (n <= 0) return;
  if (!queries || !out) throw Error("bad_input", "nearest-neighbour search: null queries or output");
  Impl& s = *impl_;
  std::lock_guard<std::mutex> lock(s.mu);
  const int64_t qb = std::min<int64_t>(s.options.queryBlock, n);
  s.ensureRows(qb);
  const float alpha = 1.0f, beta = 0.0f;
  for (int64_t q0 = 0; q0 < n; q0 += qb) {
    const int64_t m = std::min(qb, n - q0);
    knnCenterRows(queries + q0 * s.dim, m, s.dim, s.center.data(), s.hQ, s.ld, s.qNorm.data());
    FS_CUDA_CHECK(cudaMemcpyAsync(s.dQ, s.hQ, size_t(m) * s.ld * sizeof(float), cudaMemcpyHostToDevice, s.stream));
    for (int64_t b0 = 0; b0 < s.size; b0 += s.bankBlock) {
      const int64_t nb = std::min(s.bankBlock, s.size - b0);
      Plan& p = s.plan(m, nb);
      FS_LT(cublasLtMatmul(s.handle, p.op, &alpha, s.dBank + b0 * s.ld, p.a, s.dQ, p.b, &beta, s.dS, p.c, s.dS, p.c,
                           &p.algo, s.workspace, kWorkspaceBytes, s.stream));
      rowMinKernel<<<static_cast<unsigned>(m), kRowMinThreads, 0, s.stream>>>(s.dS, s.ldS, static_cast<int>(nb),
                                                                             s.dBankNorm + b0, s.dBest, b0 == 0);
      FS_CUDA_CHECK_LAUNCH("rowMinKernel");
    }
    FS_CUDA_CHECK(cudaMemcpyAsync(s.hBest, s.dBest, size_t(m) * sizeof(float), cudaMemcpyDeviceToHost, s.stream));
    FS_CUDA_CHECK(cudaStreamSynchronize(s.stream));
    // |q|^2 is the same for the whole row; rounding can push an exact match a little below 0.
    for (int64_t i = 0; i < m; ++i)
      out[q0 + i] = static_cast<float>(std::sqrt(std::max(0.0, s.qNorm[i] + static_cast<double>(s.hBest[i]))));
  }
}

}  // namespace cuda
}  // namespace flashslide
