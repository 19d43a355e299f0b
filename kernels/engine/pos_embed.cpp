// flashslide engine: Pillow/PyTorch-antialias bicubic resampling of position
// embeddings (see pos_embed.h for the exact sampling rule and layout).
#include "pos_embed.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace flashslide {

namespace {

// Keys cubic convolution kernel with a = -0.5 (Pillow's BICUBIC; PyTorch's
// non-antialias bicubic uses -0.75, which is why the two paths disagree).
double keysCubic(double x) {
  const double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

}  // namespace

AxisWeights bicubicAAWeights(int in, int out) {
  AxisWeights w;
  w.in = in;
  w.out = out;
  const double scale = static_cast<double>(in) / out;
  const double support = 2.0 * std::max(scale, 1.0);
  const double invScale = scale >= 1.0 ? 1.0 / scale : 1.0;
  w.maxTaps = static_cast<int>(std::ceil(support)) * 2 + 1;
  w.first.resize(out);
  w.count.resize(out);
  w.weight.assign(static_cast<size_t>(out) * w.maxTaps, 0.0);
  for (int i = 0; i < out; ++i) {
    const double centre = scale * (i + 0.5);
    // Truncation toward zero mirrors the (int) casts in the reference implementations.
    int lo = std::max(static_cast<int>(centre - support + 0.5), 0);
    int hi = std::min(static_cast<int>(centre + support + 0.5), in);
    int n = std::min(hi - lo, w.maxTaps);
    double* row = &w.weight[static_cast<size_t>(i) * w.maxTaps];
    double total = 0.0;
    for (int j = 0; j < n; ++j) {
      row[j] = keysCubic((j + lo - centre + 0.5) * invScale);
      total += row[j];
    }
    if (total != 0.0)
      for (int j = 0; j < n; ++j) row[j] /= total;
    w.first[i] = lo;
    w.count[i] = n;
  }
  return w;
}

void resampleGridBicubicAA(const float* src, int inH, int inW, int D, int outH, int outW,
                           float* dst) {
  if (inH == outH && inW == outW) {
    std::memcpy(dst, src, sizeof(float) * static_cast<size_t>(inH) * inW * D);
    return;
  }
  const AxisWeights wx = bicubicAAWeights(inW, outW);
  const AxisWeights wy = bicubicAAWeights(inH, outH);
  // Pass 1 (along W): [inH, inW, D] -> [inH, outW, D] in double.
  std::vector<double> tmp(static_cast<size_t>(inH) * outW * D, 0.0);
  for (int y = 0; y < inH; ++y)
    for (int x = 0; x < outW; ++x) {
      double* o = &tmp[(static_cast<size_t>(y) * outW + x) * D];
      const double* w = &wx.weight[static_cast<size_t>(x) * wx.maxTaps];
      for (int t = 0; t < wx.count[x]; ++t) {
        const float* s = src + (static_cast<size_t>(y) * inW + wx.first[x] + t) * D;
        for (int c = 0; c < D; ++c) o[c] += w[t] * s[c];
      }
    }
  // Pass 2 (along H): [inH, outW, D] -> [outH, outW, D].
  std::vector<double> acc(D);
  for (int y = 0; y < outH; ++y) {
    const double* w = &wy.weight[static_cast<size_t>(y) * wy.maxTaps];
    for (int x = 0; x < outW; ++x) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int t = 0; t < wy.count[y]; ++t) {
        const double* s = &tmp[(static_cast<size_t>(wy.first[y] + t) * outW + x) * D];
        for (int c = 0; c < D; ++c) acc[c] += w[t] * s[c];
      }
      float* o = dst + (static_cast<size_t>(y) * outW + x) * D;
      for (int c = 0; c < D; ++c) o[c] = static_cast<float>(acc[c]);
    }
  }
}

std::vector<float> resamplePosEmbed(const float* pos, int prefixRows, int inH, int inW, int D,
                                    int outH, int outW) {
  std::vector<float> out((static_cast<size_t>(prefixRows) + static_cast<size_t>(outH) * outW) * D);
  std::memcpy(out.data(), pos, sizeof(float) * static_cast<size_t>(prefixRows) * D);
  resampleGridBicubicAA(pos + static_cast<size_t>(prefixRows) * D, inH, inW, D, outH, outW,
                        out.data() + static_cast<size_t>(prefixRows) * D);
  return out;
}

}  // namespace flashslide
