import { describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSlide } from '../../worker/slide/open-slide.js';
import { inspectSlide } from '../../worker/cli/inspect.js';
import {
  CorruptSlideError, TooLargeSlideError,
  InvalidArgumentError,
  SlideError,
  SlideNotFoundError,
  UnsupportedFormatError,
} from '../../worker/slide/errors.js';
import { BROKEN, CMU, ROOT, tempDir } from '../helpers.js';

/** A classic little-endian TIFF with one strip IFD claiming the given size and no real pixel data. */
function tiffClaiming(width: number, height: number): Buffer {
  const entries: [number, number, number, number][] = [
    [256, 4, 1, width], // ImageWidth, LONG
    [257, 4, 1, height], // ImageLength
    [258, 3, 1, 8], // BitsPerSample
    [259, 3, 1, 1], // Compression none
    [262, 3, 1, 2], // RGB
    [273, 4, 1, 8], // StripOffsets
    [277, 3, 1, 3], // SamplesPerPixel
    [278, 4, 1, height], // RowsPerStrip
    [279, 4, 1, 3], // StripByteCounts
  ];
  const ifd = Buffer.alloc(2 + entries.length * 12 + 4);
  ifd.writeUInt16LE(entries.length, 0);
  entries.forEach(([tag, type, count, value], i) => {
    const o = 2 + i * 12;
    ifd.writeUInt16LE(tag, o);
    ifd.writeUInt16LE(type, o + 2);
    ifd.writeUInt32LE(count, o + 4);
    if (type === 3) ifd.writeUInt16LE(value, o + 8);
    else ifd.writeUInt32LE(value, o + 8);
  });
  const header = Buffer.from([0x49, 0x49, 42, 0, 16, 0, 0, 0]);
  return Buffer.concat([header, Buffer.from([1, 2, 3, 0, 0, 0, 0, 0]), ifd]);
}

async function expectSlideError<T extends SlideError>(p: Promise<unknown>, type: new (...args: never[]) => T, message: RegExp): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'expected a rejection').toBeInstanceOf(type);
  expect((err as Error).message).toMatch(message);
  // One line a person can read: no stack, no multi-line dump.
  expect((err as Error).message).not.toContain('\n');
}

describe('bad input gives a clear error, never a crash or a hang', () => {
  it('missing file', async () => {
    await expectSlideError(openSlide('/nonexistent/slide.svs'), SlideNotFoundError, /no such file/);
  });

  it('a directory', async () => {
    await expectSlideError(openSlide(ROOT), SlideNotFoundError, /is a directory/);
  });

  it('an empty file', async () => {
    const p = join(tempDir(), 'empty.svs');
    writeFileSync(p, '');
    await expectSlideError(openSlide(p), CorruptSlideError, /empty/);
  });

  it('random bytes named .svs (broken.svs)', async () => {
    await expectSlideError(openSlide(BROKEN), UnsupportedFormatError, /not a slide format flashslide reads/);
  });

  it('a text file', async () => {
    await expectSlideError(openSlide(join(ROOT, 'package.json')), UnsupportedFormatError, /first bytes 7b/);
  });

  it('truncated slides: inside the header, and half way (Aperio keeps its directories at the end)', async () => {
    const dir = tempDir();
    const bytes = readFileSync(CMU);
    const header = join(dir, 'header.svs');
    writeFileSync(header, bytes.subarray(0, 12));
    await expectSlideError(openSlide(header), CorruptSlideError, /header\.svs: damaged TIFF: .*truncated/);
    const half = join(dir, 'half.svs');
    writeFileSync(half, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expectSlideError(openSlide(half), CorruptSlideError, /half\.svs: damaged TIFF: image directory 0 at byte \d+ .* truncated/);
  });

  it('an SVS whose tile data is damaged fails when those tiles are read', async () => {
    const dir = tempDir();
    const p = join(dir, 'damaged.svs');
    const bytes = Buffer.from(readFileSync(CMU));
    bytes.fill(0, 200_000, 1_200_000); // JPEG tiles; the directories live past byte 1.27 M
    writeFileSync(p, bytes);
    await expectSlideError(inspectSlide(p, { outDir: dir, regions: {} }), CorruptSlideError, /damaged\.svs: (cannot decode level 0|level 0 tile)/);
  });

  it('absurd dimensions in the header', async () => {
    const p = join(tempDir(), 'huge.tif');
    writeFileSync(p, tiffClaiming(0xffffffff, 0xffffffff));
    await expectSlideError(openSlide(p), CorruptSlideError, /claims 4294967295x4294967295 pixels/);
  });

  it('plausible header dimensions but no pixel data behind them', async () => {
    const p = join(tempDir(), 'hollow.tif');
    writeFileSync(p, tiffClaiming(100000, 100000));
    // Refused on its claimed size before its (missing) pixels are looked for.
    await expectSlideError(openSlide(p), TooLargeSlideError, /hollow\.tif: 100000 x 100000 px in a single level/);
  });

  it('absurd region requests and levels', async () => {
    const s = await openSlide(CMU);
    await expectSlideError(s.readRegion(0, 0, 0, 100000, 100000), InvalidArgumentError, /pixel limit/);
    await expectSlideError(s.readRegion(3, 0, 0, 10, 10), InvalidArgumentError, /level 3 does not exist/);
    await expectSlideError(s.readRegion(0, 0.5, 0, 10, 10), InvalidArgumentError, /not an integer/);
    await expectSlideError(s.readRegion(0, 0, 0, 0, 10), InvalidArgumentError, /empty/);
    await expectSlideError(s.readAssociatedImage('barcode'), InvalidArgumentError, /no associated image "barcode"/);
  });

  it('an implausible --mpp', async () => {
    await expectSlideError(openSlide(CMU, { mpp: -1 }), InvalidArgumentError, /not a plausible/);
    await expectSlideError(openSlide(CMU, { mpp: Number.NaN }), InvalidArgumentError, /not a plausible/);
  });

  it('an MRXS-named file OpenSlide does not recognise is not mistaken for a slide', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'slide'));
    const p = join(dir, 'slide.mrxs');
    copyFileSync(BROKEN, p);
    await expectSlideError(openSlide(p), UnsupportedFormatError, /not a slide format/);
  });
});
