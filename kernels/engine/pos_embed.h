// flashslide engine: absolute position-embedding resampling, timm-compatible.
//
// timm's resample_abs_pos_embed (dynamic_img_size=True) calls
//   F.interpolate(grid, size=(gh, gw), mode="bicubic", antialias=True)
// whose antialias path is Pillow's BICUBIC resampling filter, not PyTorch's plain
// bicubic (engine-facts.md 4.3):
//   scale = in/out, support = 2*max(scale, 1), centre_i = (i + 0.5) * scale
//   taps j in [trunc(centre - support + 0.5) clamped to 0, trunc(centre + support + 0.5)
//   clamped to in), weight = keys((j - centre + 0.5) * min(1, out/in)), Keys a = -0.5,
//   taps outside the input dropped and the remaining weights renormalised to sum 1.
// It is separable, so we apply a 1-D weight matrix along W, then along H. Computed in
// double (the fixtures' reference ran in float64), stored as float.
//
// Layout: grid rows are row-major patch positions (h-major, then w), D floats each.
// Prefix rows (cls/reg entries when no_embed_class=False) are copied unchanged.
#pragma once

#include <vector>

namespace flashslide {

// 1-D Pillow-style antialiased bicubic weights for resizing `in` samples to `out`.
struct AxisWeights {
  int in = 0, out = 0;
  std::vector<int> first;      // first input tap of output i
  std::vector<int> count;      // number of taps of output i
  std::vector<double> weight;  // out x maxTaps, row i holds count[i] weights
  int maxTaps = 0;
};
AxisWeights bicubicAAWeights(int in, int out);

// src: [inH*inW, D] -> dst: [outH*outW, D]. Identity copy when sizes match.
void resampleGridBicubicAA(const float* src, int inH, int inW, int D, int outH, int outW,
                           float* dst);

// pos: [prefixRows + inH*inW, D] -> [prefixRows + outH*outW, D]
std::vector<float> resamplePosEmbed(const float* pos, int prefixRows, int inH, int inW, int D,
                                    int outH, int outW);

}  // namespace flashslide
