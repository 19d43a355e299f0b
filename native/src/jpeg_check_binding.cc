// The entropy check of a stored JPEG tile in C++, run on libuv's thread pool: the same walk as
// entropyDamage in worker/slide/jpeg-tile.ts (the reference, whose header says why the check
// exists: libvips drops a libjpeg warning raised in a tile's last MCU row). In JavaScript it
// took ~0.13 ms of the event loop per 256x256 tile, for every tile a slide decodes, time in
// which the event loop could not feed the engine; here the event loop only queues it.
//
// Algorithm (a baseline JPEG: sequential, Huffman, 8-bit; anything else is left to the decoder):
//   1. Headers: walk the marker segments up to the first SOS. DHT builds each Huffman table (a
//      10-bit lookup of the short codes, plus the largest code of each length for the long
//      ones); SOF0/SOF1 gives the frame size and each component's sampling factors; DRI the
//      restart interval. Anything malformed, or another coding process, or a frame larger than
//      maxPixels: null (the decoder reports or refuses those from the headers).
//   2. The scan: one scan of every component, spectrum 0..63. For each MCU (interleaved:
//      h x v blocks of each component; one component: one block), for each block decode the DC
//      code and its magnitude bits, then AC codes (skipping their magnitude bits) up to 63
//      coefficients or end of block. No pixels are decoded: only codes are found and bits
//      skipped. Bytes FF 00 are a data FF; FF followed by anything else is a marker, where the
//      data ends and zero bits follow (as libjpeg supplies them).
//   3. Damage, as libjpeg would warn: a code in no table ("bad Huffman code"); an MCU that
//      consumed bits past the end of the data ("premature end of data segment"); at a restart
//      boundary, whole bytes left before the marker ("extraneous bytes") or a marker that is not
//      the next RSTn ("missing or out of sequence"). A code's magnitude bits may run into bytes
//      not read yet; those are read before an MCU is judged. The walk stops after the frame's
//      last MCU.
// Each message is the reference's, character for character; a test compares the two on every
// tile of a real slide and on thousands of damaged ones.
//
// JS API (typed in worker/native/jpeg-kernels.ts):
//   jpegEntropyDamage(jpeg: Uint8Array, maxPixels: integer 0..2^53): Promise<string | null>
//       The bytes are read on the thread pool: the caller leaves them unchanged until it settles.
#include "jpeg_check_binding.h"

#include "binding_util.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flashslide {

namespace {

constexpr int kFastBits = 10;
constexpr uint32_t kFastMask = (1u << kFastBits) - 1;
constexpr uint8_t kSoi = 0xd8, kEoi = 0xd9;

struct HuffTable {
  bool defined = false;
  bool dc = false;
  // For each 10-bit prefix whose code is at most 10 bits long: (bits to skip << 8) | symbol,
  // where the bits are the code's and its magnitude's (DC: the symbol; AC: its low nibble);
  // 0 when the code is longer.
  uint16_t fast[1 << kFastBits] = {};
  // Largest code of each length 1..16 (-1 when none), and where that length's symbols start
  // minus its first code.
  int32_t maxcode[18] = {};
  int32_t valoffset[18] = {};
  std::vector<uint8_t> values;
};

// huffTable in jpeg-tile.ts: false for what libjpeg refuses (a DC symbol above 15, codes that
// overflow their length).
bool buildTable(const uint8_t* counts, const uint8_t* values, int total, bool dc, HuffTable& t) {
  t.dc = dc;
  t.values.assign(values, values + total);
  std::fill(std::begin(t.fast), std::end(t.fast), uint16_t{0});
  std::fill(std::begin(t.maxcode), std::end(t.maxcode), -1);
  std::fill(std::begin(t.valoffset), std::end(t.valoffset), 0);
  int32_t code = 0;
  int k = 0;
  for (int len = 1; len <= 16; ++len) {
    const int n = counts[len - 1];
    if (n > 0) {
      t.valoffset[len] = k - code;
      for (int i = 0; i < n; ++i, ++k, ++code) {
        const int sym = t.values[k];
        if (dc && sym > 15) return false;
        if (len <= kFastBits) {
          const int shift = kFastBits - len;
          const auto entry = static_cast<uint16_t>(((len + (dc ? sym : sym & 15)) << 8) | sym);
          // An overflowing table is refused below; until then, stay inside the lookup.
          const int from = std::min(code << shift, 1 << kFastBits), to = std::min((code + 1) << shift, 1 << kFastBits);
          std::fill(t.fast + from, t.fast + to, entry);
        }
      }
      t.maxcode[len] = code - 1;
    }
    if (code > (1 << len)) return false;
    code <<= 1;
  }
  t.defined = true;
  return true;
}

// A code longer than 10 bits at the top of the first `nbits` bits of `acc`: (length << 8) |
// symbol, or -1 (a code in no table).
int slowCode(const HuffTable& t, uint32_t acc, int nbits) {
  for (int l = kFastBits + 1; l <= 16; ++l) {
    const int32_t code = static_cast<int32_t>((acc >> (nbits - l)) & ((1u << l) - 1));
    if (code <= t.maxcode[l]) {
      const size_t at = static_cast<size_t>(code + t.valoffset[l]);  // always in range for a canonical table
      return (l << 8) | (at < t.values.size() ? t.values[at] : 0);
    }
  }
  return -1;
}

struct ScanComponent {
  int h, v;
  const HuffTable* dc;
  const HuffTable* ac;
};

std::optional<std::string> walkScan(const uint8_t* b, int64_t n, int64_t start, int64_t width, int64_t height,
                                    const std::vector<ScanComponent>& comps, int64_t restartInterval) {
  int64_t hmax = 1, vmax = 1;
  for (const auto& c : comps) {
    hmax = std::max<int64_t>(hmax, c.h);
    vmax = std::max<int64_t>(vmax, c.v);
  }
  // A single-component scan is not interleaved: its MCU is one block of that component.
  const bool single = comps.size() == 1;
  const auto ceilDiv = [](int64_t a, int64_t d) { return (a + d - 1) / d; };
  const ScanComponent& c0 = comps[0];
  const int64_t mcusX = single ? ceilDiv(ceilDiv(width * c0.h, hmax), 8) : ceilDiv(width, 8 * hmax);
  const int64_t mcusY = single ? ceilDiv(ceilDiv(height * c0.v, vmax), 8) : ceilDiv(height, 8 * vmax);
  std::vector<const HuffTable*> dcs, acs;
  for (const auto& c : comps) {
    for (int i = 0; i < (single ? 1 : c.h * c.v); ++i) {
      dcs.push_back(c.dc);
      acs.push_back(c.ac);
    }
  }
  const size_t perMcu = dcs.size();
  const int64_t total = mcusX * mcusY;
  const auto at = [&](int64_t mcu) {
    return "MCU " + std::to_string(mcu % mcusX) + "," + std::to_string(mcu / mcusX) + " of " + std::to_string(mcusX) + "x" +
           std::to_string(mcusY);
  };

  // The low `nbits` bits of `acc` are the next bits (negative: bits to skip in bytes not yet
  // read, when a code's magnitude bits run past what was read). After the data ends (a marker,
  // or the end of the bytes) zero bits follow; `fake` counts those, so consuming one shows as
  // nbits < fake.
  int64_t pos = start;
  uint32_t acc = 0;
  int nbits = 0;
  int fake = 0;
  bool ended = false;
  int rst = 0;
  // Reads bytes until more than 24 bits are buffered (zero bits once the data has ended).
  const auto fill = [&] {
    while (nbits <= 24) {
      uint32_t byte = 0;
      if (!ended) {
        if (pos >= n) {
          ended = true;
        } else {
          byte = b[pos];
          if (byte != 0xff) {
            ++pos;
          } else {
            int64_t q = pos + 1;
            while (q < n && b[q] == 0xff) ++q;
            if (q < n && b[q] == 0) {
              pos = q + 1;
            } else {
              ended = true;  // a marker: pos stays on it
              byte = 0;
            }
          }
        }
      }
      if (ended) fake += 8;
      acc = (acc << 8) | byte;
      nbits += 8;
    }
  };
  for (int64_t mcu = 0; mcu < total; ++mcu) {
    if (restartInterval > 0 && mcu > 0 && mcu % restartInterval == 0) {
      // libjpeg drops the rest of the byte and counts whole bytes before the marker as extraneous.
      int64_t extra = nbits - fake > 0 ? (nbits - fake) / 8 : 0;
      if (!ended) {
        while (pos < n && !(b[pos] == 0xff && pos + 1 < n && b[pos + 1] != 0)) {
          pos += b[pos] == 0xff ? 2 : 1;
          ++extra;
        }
      }
      if (extra > 0) return "Corrupt JPEG data: " + std::to_string(extra) + " extraneous bytes before the restart marker (" + at(mcu) + ")";
      while (pos + 2 < n && b[pos + 1] == 0xff) ++pos;  // fill bytes before the marker
      if (pos + 1 >= n || b[pos + 1] != 0xd0 + rst)
        return "Corrupt JPEG data: restart marker " + std::to_string(rst) + " missing or out of sequence (" + at(mcu) + ")";
      rst = (rst + 1) & 7;
      pos += 2;
      acc = 0;
      nbits = 0;
      fake = 0;
      ended = false;
    }
    for (size_t blk = 0; blk < perMcu; ++blk) {
      const HuffTable* t = dcs[blk];
      for (int k = 0; k < 64; ++k) {
        if (nbits < 16) fill();
        int e = t->fast[(acc >> (nbits - kFastBits)) & kFastMask];
        if (e == 0) {
          e = slowCode(*t, acc, nbits);
          if (e < 0) return "Corrupt JPEG data: bad Huffman code (" + at(mcu) + ")";
          e += (t->dc ? e & 0xff : e & 15) << 8;  // skip the magnitude bits too
        }
        nbits -= e >> 8;
        if (k == 0) {
          t = acs[blk];
          continue;
        }
        const int rs = e & 0xff;
        if ((rs & 15) != 0) k += rs >> 4;
        else if (rs == 0xf0) k += 15;
        else break;  // end of block
      }
    }
    // The last code's magnitude bits may run into bytes not read yet: they are data (and not
    // extraneous before a restart marker) unless the data ends there.
    if (nbits < 0) fill();
    if (nbits < fake) return "Corrupt JPEG data: premature end of data segment (" + at(mcu) + ")";
  }
  return std::nullopt;
}

// entropyDamage in jpeg-tile.ts: the headers up to the first SOS, then the scan.
std::optional<std::string> entropyDamage(const uint8_t* b, int64_t n, int64_t maxPixels) {
  HuffTable dcTables[4], acTables[4];
  struct FrameComponent {
    bool present = false;
    int h = 0, v = 0;
  };
  bool haveFrame = false;
  int64_t width = 0, height = 0;
  FrameComponent frame[256];
  int frameComps = 0;  // distinct component ids
  int64_t restartInterval = 0;
  if (n < 4 || b[0] != 0xff || b[1] != kSoi) return std::nullopt;
  int64_t p = 2;
  for (;;) {
    // Anything odd between or inside the segments is the decoder's to report (from the headers).
    if (p + 4 > n || b[p] != 0xff) return std::nullopt;
    while (p + 5 < n && b[p + 1] == 0xff) ++p;
    const int m = b[p + 1];
    if ((m >= 0xd0 && m <= 0xd7) || m == 0x01) {
      p += 2;
      continue;
    }
    const int64_t len = (int64_t{b[p + 2]} << 8) | b[p + 3];
    const int64_t s = p + 4;
    const int64_t e = p + 2 + len;
    if (m == kEoi || m == 0x00 || len < 2 || e > n) return std::nullopt;
    if (m == 0xc4) {
      for (int64_t q = s; q < e;) {
        if (q + 17 > e) return std::nullopt;
        const int tc = b[q] >> 4, th = b[q] & 15;
        int total = 0;
        for (int i = 1; i <= 16; ++i) total += b[q + i];
        if (q + 17 + total > e || th > 3 || tc > 1) return std::nullopt;
        HuffTable& t = (tc == 0 ? dcTables : acTables)[th];
        if (!buildTable(b + q + 1, b + q + 17, total, tc == 0, t)) return std::nullopt;
        q += 17 + total;
      }
    } else if (m == 0xc0 || m == 0xc1) {
      if (len < 8 || b[s] != 8) return std::nullopt;
      const int64_t hgt = (int64_t{b[s + 1]} << 8) | b[s + 2];
      const int64_t wid = (int64_t{b[s + 3]} << 8) | b[s + 4];
      const int nf = b[s + 5];
      if (wid == 0 || hgt == 0 || wid * hgt > maxPixels || nf == 0 || len < 8 + 3 * nf) return std::nullopt;
      for (auto& c : frame) c = FrameComponent{};
      frameComps = 0;
      for (int i = 0; i < nf; ++i) {
        const int hv = b[s + 7 + 3 * i];
        const int h = hv >> 4, v = hv & 15;
        if (h < 1 || h > 4 || v < 1 || v > 4) return std::nullopt;
        FrameComponent& c = frame[b[s + 6 + 3 * i]];
        if (!c.present) ++frameComps;
        c = {true, h, v};
      }
      haveFrame = true;
      width = wid;
      height = hgt;
    } else if (m >= 0xc2 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
      return std::nullopt;  // progressive, lossless, hierarchical or arithmetic coding: not checked here
    } else if (m == 0xdd) {
      if (len != 4) return std::nullopt;
      restartInterval = (int64_t{b[s]} << 8) | b[s + 1];
    } else if (m == 0xda) {
      // len >= 8 before reading: a scan of at least one component is 6 + 2 ns bytes.
      if (!haveFrame || len < 8) return std::nullopt;
      const int ns = b[s];
      if (ns < 1 || ns > 4 || len != 6 + 2 * ns) return std::nullopt;
      // One scan of all the frame's components over the whole spectrum: the baseline case.
      if (ns != frameComps || b[s + 1 + 2 * ns] != 0 || b[s + 2 + 2 * ns] != 63 || b[s + 3 + 2 * ns] != 0) return std::nullopt;
      std::vector<ScanComponent> comps;
      for (int i = 0; i < ns; ++i) {
        const FrameComponent& c = frame[b[s + 1 + 2 * i]];
        const int t = b[s + 2 + 2 * i];
        const int td = t >> 4, ta = t & 15;
        if (!c.present || td > 3 || ta > 3 || !dcTables[td].defined || !acTables[ta].defined) return std::nullopt;
        comps.push_back({c.h, c.v, &dcTables[td], &acTables[ta]});
      }
      return walkScan(b, n, e, width, height, comps, restartInterval);
    }
    p = e;
  }
}

class JpegCheckWorker : public Napi::AsyncWorker {
 public:
  JpegCheckWorker(Napi::Env env, Napi::Uint8Array jpeg, int64_t maxPixels)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        data_(jpeg.Data()),
        size_(static_cast<int64_t>(jpeg.ElementLength())),
        maxPixels_(maxPixels) {
    // The bytes stay alive (and unmoved) while the thread pool reads them.
    keep_ = Napi::Persistent(jpeg);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    if (!capture([&] { result_ = entropyDamage(data_, size_, maxPixels_); }, error_)) SetError(error_.message);
  }
  void OnOK() override {
    Napi::Env env = Env();
    keep_.Reset();
    deferred_.Resolve(result_.has_value() ? Napi::String::New(env, *result_) : env.Null());
  }
  void OnError(const Napi::Error&) override {
    keep_.Reset();
    deferred_.Reject(toJsError(Env(), error_).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Uint8Array> keep_;
  const uint8_t* data_;
  int64_t size_;
  int64_t maxPixels_;
  std::optional<std::string> result_;
  CaughtError error_;
};

Napi::Value JpegEntropyDamage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !typedArrayOf(info[0], napi_uint8_array))
    throw Napi::TypeError::New(env, "jpegEntropyDamage(jpeg: Uint8Array, maxPixels: number)");
  const int64_t maxPixels = checkedInt(info[1], "maxPixels", 0, int64_t(1) << 53);
  auto* worker = new JpegCheckWorker(env, info[0].As<Napi::Uint8Array>(), maxPixels);
  auto promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void InitJpegCheck(Napi::Env env, Napi::Object exports) {
  exports.Set("jpegEntropyDamage", Napi::Function::New(env, JpegEntropyDamage));
}

}  // namespace flashslide
