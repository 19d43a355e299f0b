/**
 * JPEG-in-TIFF tiles as standalone JPEG files. A TIFF with compression 7 usually stores each tile
 * as an abbreviated stream (SOI, frame, scan, EOI) and the quantisation and Huffman tables once,
 * in JPEGTables (SOI, DQT, DHT, EOI). A complete file is the tables without their EOI followed by
 * the tile without its SOI. Tiles whose photometric interpretation is RGB hold RGB samples; a
 * JFIF decoder assumes YCbCr for three components unless an Adobe APP14 marker says
 * "no transform", so one is inserted after SOI.
 */

const SOI = 0xd8;
const EOI = 0xd9;

/** APP14 "Adobe", version 100, no flags, transform 0 (the components are RGB). */
const ADOBE_RGB = Buffer.from([0xff, 0xee, 0x00, 0x0e, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00]);

function startsWithSoi(b: Buffer): boolean {
  return b.length >= 2 && b[0] === 0xff && b[1] === SOI;
}

function endsWithEoi(b: Buffer): boolean {
  return b.length >= 2 && b[b.length - 2] === 0xff && b[b.length - 1] === EOI;
}

/** A complete JPEG file from a stored tile and its level's tables; null when the bytes are not a JPEG stream. */
export function completeJpeg(tile: Buffer, tables: Buffer | null, rgb: boolean): Buffer | null {
  if (!startsWithSoi(tile)) return null;
  const parts: Buffer[] = [tile.subarray(0, 2)];
  if (rgb) parts.push(ADOBE_RGB);
  if (tables !== null && tables.length > 4) {
    if (!startsWithSoi(tables) || !endsWithEoi(tables)) return null;
    parts.push(tables.subarray(2, tables.length - 2));
  }
  parts.push(tile.subarray(2));
  return Buffer.concat(parts);
}

/**
 * Why an entropy check of our own: libvips' JPEG loader with fail-on "warning" looks at libjpeg's
 * warning count before it decodes each 8-row strip, never after the last one, so a warning raised
 * while the last MCU row is decoded is dropped (libvips only logs it when the image closes). That
 * is where damage inside the entropy-coded data usually surfaces: a run of zero bytes or a
 * shortened segment desynchronises the Huffman decoder, which then runs out of data in the last
 * row ("premature end of data segment"), and the tile decodes to garbage without an error.
 * OpenSlide turns every libjpeg warning into an error, so it refuses such a tile.
 *
 * `entropyDamage` walks the Huffman-coded data of a baseline (sequential, Huffman, 8-bit) JPEG
 * without decoding pixels and reports what libjpeg warns about while decoding it: a code that is
 * in no table (JWRN_HUFF_BAD_CODE), the data ending (a marker, or the end of the bytes) before
 * the last MCU (JWRN_HIT_MARKER), bytes left over before a restart marker (JWRN_EXTRANEOUS_DATA)
 * or a restart marker out of sequence (JWRN_MUST_RESYNC). Like libjpeg as libvips and OpenSlide
 * run it, it does not look past the last MCU (bytes there are never read). Other JPEG processes
 * (progressive, arithmetic, lossless, 12-bit) are left to the decoder: null. It is stricter than
 * libjpeg-turbo twice: its fast path (all but the last 512 bytes per block of an MCU) decodes a
 * bad code as a zero without a warning, and it counts bytes before a restart marker only beyond
 * its bit buffer's read-ahead; here both are damage. Damage that leaves the decoder in
 * step (most single-bit flips, a changed magnitude bit) is invisible to both: the tile decodes
 * to slightly different pixels. The sharp backend runs the C++ twin (native/src/
 * jpeg_check_binding.cc, through worker/native/jpeg-kernels.ts) on the thread pool; this one is
 * the reference, and a test holds the two to the same answers.
 */

interface HuffTable {
  /**
   * For each FAST_BITS-bit prefix whose code is at most FAST_BITS long: (bits to skip << 8) |
   * symbol, where the bits are the code's and the magnitude's that follows it (the symbol's low
   * nibble, or for DC the whole symbol); 0 when the code is longer.
   */
  readonly fast: Uint16Array;
  /** Largest code of each length 1..16 (-1 when none), and where the symbols of that length start minus the first code. */
  readonly maxcode: Int32Array;
  readonly valoffset: Int32Array;
  readonly values: Uint8Array;
  readonly dc: boolean;
}

const FAST_BITS = 10;
const FAST_MASK = (1 << FAST_BITS) - 1;

function huffTable(counts: Uint8Array, values: Uint8Array, dc: boolean): HuffTable | null {
  const maxcode = new Int32Array(18).fill(-1);
  const valoffset = new Int32Array(18);
  const fast = new Uint16Array(1 << FAST_BITS);
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    const n = counts[len - 1] as number;
    if (n > 0) {
      valoffset[len] = k - code;
      for (let i = 0; i < n; i++, k++, code++) {
        const sym = values[k] as number;
        if (dc && sym > 15) return null; // libjpeg refuses such a DC table
        if (len <= FAST_BITS) {
          const shift = FAST_BITS - len;
          const entry = ((len + (dc ? sym : sym & 15)) << 8) | sym;
          fast.fill(entry, code << shift, (code + 1) << shift);
        }
      }
      maxcode[len] = code - 1;
    }
    // A table whose codes overflow their length is not a Huffman table (libjpeg refuses it).
    if (code > 1 << len) return null;
    code <<= 1;
  }
  return { fast, maxcode, valoffset, values, dc };
}

interface ScanComponent {
  readonly h: number;
  readonly v: number;
  readonly dc: HuffTable;
  readonly ac: HuffTable;
}

/**
 * Damage libjpeg would warn about in the entropy-coded data of a baseline JPEG; null when there
 * is none, or the JPEG is not baseline Huffman, or its frame claims more than `maxPixels` (the
 * decoder refuses that from the header; the walk stays bounded by the frame, not the bytes).
 */
export function entropyDamage(jpeg: Uint8Array, maxPixels = Number.POSITIVE_INFINITY): string | null {
  const dcTables: (HuffTable | null)[] = [null, null, null, null];
  const acTables: (HuffTable | null)[] = [null, null, null, null];
  let frame: { width: number; height: number; comps: Map<number, { h: number; v: number }> } | null = null;
  let restartInterval = 0;
  const n = jpeg.length;
  if (n < 4 || jpeg[0] !== 0xff || jpeg[1] !== SOI) return null;
  let p = 2;
  for (;;) {
    // Anything odd between or inside the segments is the decoder's to report (from the headers).
    if (p + 4 > n || jpeg[p] !== 0xff) return null;
    while (jpeg[p + 1] === 0xff && p + 5 < n) p++;
    const m = jpeg[p + 1] as number;
    if ((m >= 0xd0 && m <= 0xd7) || m === 0x01) {
      p += 2;
      continue;
    }
    const len = ((jpeg[p + 2] as number) << 8) | (jpeg[p + 3] as number);
    const s = p + 4;
    const e = p + 2 + len;
    if (m === EOI || m === 0x00 || len < 2 || e > n) return null;
    if (m === 0xc4) {
      for (let q = s; q < e; ) {
        if (q + 17 > e) return null;
        const tc = (jpeg[q] as number) >> 4;
        const th = (jpeg[q] as number) & 15;
        const counts = jpeg.subarray(q + 1, q + 17);
        let total = 0;
        for (const c of counts) total += c;
        if (q + 17 + total > e || th > 3 || tc > 1) return null;
        const t = huffTable(counts, jpeg.subarray(q + 17, q + 17 + total), tc === 0);
        if (t === null) return null;
        (tc === 0 ? dcTables : acTables)[th] = t;
        q += 17 + total;
      }
    } else if (m === 0xc0 || m === 0xc1) {
      if (len < 8 || jpeg[s] !== 8) return null;
      const height = ((jpeg[s + 1] as number) << 8) | (jpeg[s + 2] as number);
      const width = ((jpeg[s + 3] as number) << 8) | (jpeg[s + 4] as number);
      const nf = jpeg[s + 5] as number;
      if (width === 0 || height === 0 || width * height > maxPixels || nf === 0 || len < 8 + 3 * nf) return null;
      const comps = new Map<number, { h: number; v: number }>();
      for (let i = 0; i < nf; i++) {
        const hv = jpeg[s + 7 + 3 * i] as number;
        const h = hv >> 4;
        const v = hv & 15;
        if (h < 1 || h > 4 || v < 1 || v > 4) return null;
        comps.set(jpeg[s + 6 + 3 * i] as number, { h, v });
      }
      frame = { width, height, comps };
    } else if (m >= 0xc2 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      return null; // progressive, lossless, hierarchical or arithmetic coding: not checked here
    } else if (m === 0xdd) {
      if (len !== 4) return null;
      restartInterval = ((jpeg[s] as number) << 8) | (jpeg[s + 1] as number);
    } else if (m === 0xda) {
      if (frame === null) return null;
      const ns = jpeg[s] as number;
      if (ns < 1 || ns > 4 || len !== 6 + 2 * ns) return null;
      // One scan of all the frame's components over the whole spectrum: the baseline case.
      if (ns !== frame.comps.size || jpeg[s + 1 + 2 * ns] !== 0 || jpeg[s + 2 + 2 * ns] !== 63 || jpeg[s + 3 + 2 * ns] !== 0) return null;
      const comps: ScanComponent[] = [];
      for (let i = 0; i < ns; i++) {
        const c = frame.comps.get(jpeg[s + 1 + 2 * i] as number);
        const t = jpeg[s + 2 + 2 * i] as number;
        const dc = dcTables[t >> 4] ?? null;
        const ac = acTables[t & 15] ?? null;
        if (c === undefined || dc === null || ac === null) return null;
        comps.push({ h: c.h, v: c.v, dc, ac });
      }
      return walkScan(jpeg, e, frame.width, frame.height, comps, restartInterval);
    }
    p = e;
  }
}

/** The code at the top of the first `nbits` bits of `acc` in `t` longer than FAST_BITS: (length << 8) | symbol, or -1 for none (a bad code). */
function slowCode(t: HuffTable, acc: number, nbits: number): number {
  for (let l = FAST_BITS + 1; l <= 16; l++) {
    const code = (acc >>> (nbits - l)) & ((1 << l) - 1);
    if (code <= (t.maxcode[l] as number)) return (l << 8) | (t.values[code + (t.valoffset[l] as number)] as number);
  }
  return -1;
}

function walkScan(b: Uint8Array, start: number, width: number, height: number, comps: readonly ScanComponent[], restartInterval: number): string | null {
  let hmax = 1;
  let vmax = 1;
  for (const c of comps) {
    hmax = Math.max(hmax, c.h);
    vmax = Math.max(vmax, c.v);
  }
  // A single-component scan is not interleaved: its MCU is one block of that component.
  const single = comps.length === 1;
  const c0 = comps[0] as ScanComponent;
  const mcusX = single ? Math.ceil(Math.ceil((width * c0.h) / hmax) / 8) : Math.ceil(width / (8 * hmax));
  const mcusY = single ? Math.ceil(Math.ceil((height * c0.v) / vmax) / 8) : Math.ceil(height / (8 * vmax));
  const dcs: HuffTable[] = [];
  const acs: HuffTable[] = [];
  for (const c of comps) {
    for (let i = 0; i < (single ? 1 : c.h * c.v); i++) {
      dcs.push(c.dc);
      acs.push(c.ac);
    }
  }
  const perMcu = dcs.length;
  const total = mcusX * mcusY;
  const n = b.length;
  const at = (mcu: number): string => `MCU ${mcu % mcusX},${Math.floor(mcu / mcusX)} of ${mcusX}x${mcusY}`;

  // The low `nbits` bits of `acc` are the next bits (negative: bits to skip in bytes not yet
  // read, when a code's magnitude bits run past what was read). After the data ends (a marker,
  // or the end of the bytes) zero bits follow, as libjpeg supplies them; `fake` counts those, so
  // consuming one shows as nbits < fake.
  let pos = start;
  let acc = 0;
  let nbits = 0;
  let fake = 0;
  let ended = false;
  let rst = 0;
  /** Reads bytes until more than 24 bits are buffered (zero bits once the data has ended). */
  const fill = (): void => {
    while (nbits <= 24) {
      let byte = 0;
      if (!ended) {
        if (pos >= n) ended = true;
        else {
          byte = b[pos] as number;
          if (byte !== 0xff) pos++;
          else {
            let q = pos + 1;
            while (q < n && b[q] === 0xff) q++;
            if (q < n && b[q] === 0) pos = q + 1;
            else {
              ended = true; // a marker: pos stays on it
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
  for (let mcu = 0; mcu < total; mcu++) {
    if (restartInterval > 0 && mcu > 0 && mcu % restartInterval === 0) {
      // libjpeg drops the rest of the byte and counts whole bytes before the marker as extraneous.
      let extra = Math.max(0, (nbits - fake) >> 3);
      if (!ended) {
        while (pos < n && !(b[pos] === 0xff && pos + 1 < n && b[pos + 1] !== 0)) {
          pos += b[pos] === 0xff ? 2 : 1;
          extra++;
        }
      }
      if (extra > 0) return `Corrupt JPEG data: ${extra} extraneous bytes before the restart marker (${at(mcu)})`;
      while (pos + 2 < n && b[pos + 1] === 0xff) pos++; // fill bytes before the marker
      if (pos + 1 >= n || b[pos + 1] !== 0xd0 + rst) return `Corrupt JPEG data: restart marker ${rst} missing or out of sequence (${at(mcu)})`;
      rst = (rst + 1) & 7;
      pos += 2;
      acc = 0;
      nbits = 0;
      fake = 0;
      ended = false;
    }
    for (let blk = 0; blk < perMcu; blk++) {
      let t = dcs[blk] as HuffTable;
      for (let k = 0; k < 64; k++) {
        if (nbits < 16) fill();
        let e = t.fast[(acc >>> (nbits - FAST_BITS)) & FAST_MASK] as number;
        if (e === 0) {
          e = slowCode(t, acc, nbits);
          if (e < 0) return `Corrupt JPEG data: bad Huffman code (${at(mcu)})`;
          e += (t.dc ? e & 0xff : e & 15) << 8; // skip the magnitude bits too
        }
        nbits -= e >> 8;
        if (k === 0) {
          t = acs[blk] as HuffTable;
          continue;
        }
        const rs = e & 0xff;
        if ((rs & 15) !== 0) k += rs >> 4;
        else if (rs === 0xf0) k += 15;
        else break; // end of block
      }
    }
    // The last code's magnitude bits may run into bytes not read yet: they are data (and not
    // extraneous before a restart marker) unless the data ends there.
    if (nbits < 0) fill();
    if (nbits < fake) return `Corrupt JPEG data: premature end of data segment (${at(mcu)})`;
  }
  return null;
}
