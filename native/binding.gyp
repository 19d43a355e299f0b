# One addon, flashslide.node: the OpenSlide reader now, the inference engine next.
# OpenSlide is optional at build time: without libopenslide-dev (found through pkg-config) the
# addon still builds and reports, at run time, which package the vendor formats need.
{
  "variables": {
    "has_openslide%": "<!(pkg-config --exists openslide && echo 1 || echo 0)"
  },
  "targets": [
    {
      "target_name": "flashslide",
      "sources": ["src/addon.cc", "src/openslide_binding.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra"],
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
