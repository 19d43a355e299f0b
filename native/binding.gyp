# One addon, flashslide.node: the OpenSlide reader and the ViT inference engine (kernels/).
# OpenSlide is optional at build time: without libopenslide-dev (found through pkg-config) the
# addon still builds and reports, at run time, which package the vendor formats need.
# The engine's CPU backend needs a BLAS (OpenBLAS, libopenblas-dev) and OpenMP.
{
  "variables": {
    "has_openslide%": "<!(pkg-config --exists openslide && echo 1 || echo 0)"
  },
  "targets": [
    {
      "target_name": "flashslide",
      "sources": [
        "src/addon.cc",
        "src/openslide_binding.cc",
        "src/engine_binding.cc",
        "../kernels/engine/json.cpp",
        "../kernels/engine/safetensors.cpp",
        "../kernels/engine/vit_config.cpp",
        "../kernels/engine/pos_embed.cpp",
        "../kernels/engine/weights.cpp",
        "../kernels/engine/engine.cpp",
        "../kernels/cpu/attention_cpu.cpp",
        "../kernels/cpu/vit_cpu.cpp"
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
      "libraries": ["-lopenblas"],
      "conditions": [
        ["has_openslide==1", {
          "defines": ["FLASHSLIDE_HAVE_OPENSLIDE=1"],
          "cflags_cc": ["<!@(pkg-config --cflags openslide)"],
          "libraries": ["<!@(pkg-config --libs openslide)"]
        }]
      ]
    }
  ]
}
