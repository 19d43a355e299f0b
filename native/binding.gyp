# One addon, flashslide.node: the OpenSlide reader and the ViT inference engine (kernels/).
# OpenSlide is optional at build time: without libopenslide-dev (found through pkg-config) the
# addon still builds and reports, at run time, which package the vendor formats need.
# The engine's CPU backend needs a BLAS (OpenBLAS, libopenblas-dev) and OpenMP.
# The CUDA backend is linked in only when scripts/build.mjs found nvcc and cuBLASLt and built
# kernels/build/libflashslide_cuda.a (make -C kernels cuda); it says so through the
# environment (FLASHSLIDE_CUDA=1, CUDA_HOME). FLASHSLIDE_BLAS_SHIM=1 (machines without a BLAS
# package, e.g. the GPU test machine) compiles kernels/cuda/blas_shim instead of -lopenblas.
{
  "variables": {
    "has_openslide%": "<!(pkg-config --exists openslide && echo 1 || echo 0)",
    "has_cuda%": "<!(echo ${FLASHSLIDE_CUDA:-0})",
    "cuda_home%": "<!(echo ${CUDA_HOME:-/usr/local/cuda})",
    "blas_shim%": "<!(echo ${FLASHSLIDE_BLAS_SHIM:-0})"
  },
  "targets": [
    {
      "target_name": "flashslide",
      "sources": [
        "src/addon.cc",
        "src/openslide_binding.cc",
        "src/engine_binding.cc",
        "src/score_binding.cc",
        "src/array_binding.cc",
        "src/memory_binding.cc",
        "src/tissue_binding.cc",
        "src/jpeg_check_binding.cc",
        "../kernels/engine/json.cpp",
        "../kernels/engine/safetensors.cpp",
        "../kernels/engine/vit_config.cpp",
        "../kernels/engine/pos_embed.cpp",
        "../kernels/engine/weights.cpp",
        "../kernels/engine/engine.cpp",
        "../kernels/cpu/attention_cpu.cpp",
        "../kernels/cpu/vit_cpu.cpp",
        "../kernels/cpu/knn_cpu.cpp",
        "../kernels/cpu/centered_gemm_cpu.cpp"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "../kernels"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-O2", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags": ["-O3", "-march=x86-64-v2", "-fopenmp"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=x86-64-v2", "-fopenmp", "-Wall", "-Wextra"],
      "ldflags": ["-fopenmp"],
      "conditions": [
        ["blas_shim==1", {
          "sources": ["../kernels/cuda/blas_shim/cblas_shim.cpp"],
          "include_dirs": ["../kernels/cuda/blas_shim"]
        }, {
          "libraries": ["-lopenblas"]
        }],
        ["has_openslide==1", {
          "defines": ["FLASHSLIDE_HAVE_OPENSLIDE=1"],
          "cflags_cc": ["<!@(pkg-config --cflags openslide)"],
          "libraries": ["<!@(pkg-config --libs openslide)"]
        }],
        ["has_cuda==1", {
          "defines": ["FLASHSLIDE_HAVE_CUDA=1"],
          "libraries": [
            "<(module_root_dir)/../kernels/build/libflashslide_cuda.a",
            "-L<(cuda_home)/lib64",
            "-Wl,-rpath,<(cuda_home)/lib64",
            "-lcublasLt",
            "-lcudart"
          ]
        }]
      ]
    }
  ]
}
