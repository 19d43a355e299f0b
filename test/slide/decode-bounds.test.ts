/**
 * Decompression bombs (issue 13, "cap decompressed bytes"): small TIFFs whose strips or tiles
 * decode to gigabytes are refused from their directories, in well under a second and without
 * decoding, with the numbers in the message; honest files that compress as well as blank glass
 * does still open.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { headerOnlyPng } from '../header-only-png.js';
import { openSlide } from '../../worker/slide/open-slide.js';
import { CorruptSlideError, TooLargeSlideError } from '../../worker/slide/errors.js';
import { DECODE_LIMITS, distinctStoredBytes } from '../../worker/slide/decode-bounds.js';
import { craftTiff, type CraftedPage } from '../fuzz/crafted-tiff.js';
import { cli, tempDir } from '../helpers.js';

const PINK: readonly [number, number, number] = [230, 160, 200];

function write(name: string, pages: CraftedPage[]): string {
  const path = join(tempDir(), name);
  writeFileSync(path, craftTiff(pages));
  return path;
}

async function refusal(path: string): Promise<{ err: unknown; ms: number }> {
  const t0 = performance.now();
  const err = await openSlide(path).then(
    async (s) => {
      await s.close();
      return null;
    },
    (e: unknown) => e,
  );
  return { err, ms: performance.now() - t0 };
}

/** 24576^2 px of Deflate-compressed black in 64-row strips (1.8 MB) plus a 512 px "level". */
const stripBomb = (): CraftedPage[] => [
  { width: 24576, height: 24576, layout: { kind: 'strip', rowsPerStrip: 64 }, mpp: 0.5 },
  { width: 512, height: 512, layout: { kind: 'strip', rowsPerStrip: 64 } },
];

/** A 131072^2 px tiled pyramid of pink tissue-coloured tiles that all share one stored tile (140 KB). */
const aliasedPyramid = (): CraftedPage[] => [
  { width: 131072, height: 131072, layout: { kind: 'tile', tileWidth: 1024, tileHeight: 1024 }, mpp: 0.5, alias: true, fill: PINK },
  { width: 8192, height: 8192, layout: { kind: 'tile', tileWidth: 1024, tileHeight: 1024 }, alias: true, fill: PINK, reduced: true },
  { width: 2048, height: 2048, layout: { kind: 'tile', tileWidth: 1024, tileHeight: 1024 }, alias: true, fill: PINK, reduced: true },
];

describe('decompression bombs are refused before decoding', () => {
  it('a Deflate strip TIFF of 24576^2 px with a thumbnail-sized second page: the overview would decode all of level 0', async () => {
    const path = write('strip-bomb.tif', stripBomb());
    const { err, ms } = await refusal(path);
    expect(err).toBeInstanceOf(TooLargeSlideError);
    expect((err as Error).message).toMatch(/strip-bomb\.tif: its pyramid stops too early: level 0 \(24576 x 24576 px\) .*the next is 512 x 512 px.*268435456 px/);
    expect(ms).toBeLessThan(2000);
  });

  it('a pyramid whose tiles all point at one stored tile: 48 GiB from 3 KiB is not a plausible compression', async () => {
    const path = write('aliased.tif', aliasedPyramid());
    const { err, ms } = await refusal(path);
    expect(err).toBeInstanceOf(CorruptSlideError);
    expect((err as Error).message).toMatch(/level 0 \(131072 x 131072 px, Deflate\) would decode to 48 GiB from 3\.0 KiB of distinct stored data \(16\.7 million x; at most 8000 x/);
    expect(ms).toBeLessThan(2000);
  });

  it('one strip or one tile that decodes to more than the per-read limit', async () => {
    // Small blocks in the file, a huge one in the header: what a reader allocates follows the header.
    const cases = [
      { layout: { kind: 'strip', rowsPerStrip: 16 }, tags: { 278: [16384] } },
      { layout: { kind: 'tile', tileWidth: 1024, tileHeight: 1024 }, tags: { 322: [16384], 323: [16384] } },
    ] as const;
    for (const { layout, tags } of cases) {
      const path = write(`${layout.kind}-block.tif`, [{ width: 16384, height: 16384, layout, tags, mpp: 0.5 }]);
      const { err, ms } = await refusal(path);
      expect(err).toBeInstanceOf(TooLargeSlideError);
      expect((err as Error).message).toMatch(new RegExp(`level 0 \\(16384 x 16384 px\\) is stored in ${layout.kind}s of 16384 x 16384 px, 768 MiB each when decoded \\(Deflate\\): more than the 256 MiB`));
      expect(ms).toBeLessThan(2000);
    }
    expect(16384 * 16384 * 3).toBeGreaterThan(DECODE_LIMITS.blockBytes);
  });

  it('a level stored in strips beyond the single-level limit, even under a proper pyramid', async () => {
    const path = write('strip-pyramid.tif', [
      { width: 20480, height: 20480, layout: { kind: 'strip', rowsPerStrip: 16 }, mpp: 0.5 },
      { width: 5120, height: 5120, layout: { kind: 'strip', rowsPerStrip: 16 } },
      { width: 1280, height: 1280, layout: { kind: 'strip', rowsPerStrip: 16 } },
    ]);
    const { err } = await refusal(path);
    expect(err).toBeInstanceOf(TooLargeSlideError);
    expect((err as Error).message).toMatch(/level 0 is 20480 x 20480 px stored in strips, not tiles: every read decodes whole 20480-px-wide bands/);
  });

  it('a PNG that decodes to more than one read may (12000^2 px of one colour): every region read would decode it from the top', async () => {
    // The header is what counts: the pixel data is a few bytes.
    const path = join(tempDir(), 'flat.png');
    writeFileSync(path, headerOnlyPng(12000, 12000));
    const { err, ms } = await refusal(path);
    expect(err).toBeInstanceOf(TooLargeSlideError);
    expect((err as Error).message).toMatch(/a PNG image of 12000 x 12000 px \(412 MiB decoded\) is decoded from its first row for every region read; larger than 256 MiB/);
    expect(ms).toBeLessThan(2000);
  });

  it('inspect and analyze end in seconds with the reason, exit 3, no stack trace', () => {
    const dir = tempDir();
    const bomb = join(dir, 'bomb.tif');
    writeFileSync(bomb, craftTiff(stripBomb()));
    const aliased = join(dir, 'aliased.tif');
    writeFileSync(aliased, craftTiff(aliasedPyramid()));
    const t0 = performance.now();
    for (const path of [bomb, aliased]) {
      const inspect = cli(['inspect', path, '--out', dir]);
      expect(inspect.code).toBe(3);
      expect(inspect.stderr).toMatch(/^flashslide: error: .*(pyramid stops too early|would decode to 48 GiB)/);
      expect(inspect.stderr.trim().split('\n')).toHaveLength(1);
    }
    const analyze = cli(['analyze', bomb, aliased, '--data', join(dir, 'data'), '--device', 'cpu']);
    expect(analyze.code).toBe(3);
    expect(analyze.stdout).toMatch(/^FAILED +.*bomb\.tif: .*pyramid stops too early/m);
    expect(analyze.stdout).toMatch(/^FAILED +.*aliased\.tif: .*crafted decompression bomb/m);
    expect(analyze.stderr).not.toMatch(/^\s+at /m);
    expect(performance.now() - t0).toBeLessThan(30_000);
  });
});

describe('honest files that compress well still open', () => {
  it('a 20480^2 px tiled pyramid of one colour, stored tile by tile (Deflate ~1000x, like blank glass)', async () => {
    const tiles = { kind: 'tile', tileWidth: 512, tileHeight: 512 } as const;
    const path = write('blank.tif', [
      { width: 20480, height: 20480, layout: tiles, mpp: 0.5, fill: [250, 250, 250] },
      { width: 5120, height: 5120, layout: tiles, fill: [250, 250, 250], reduced: true },
      { width: 1280, height: 1280, layout: tiles, fill: [250, 250, 250], reduced: true },
    ]);
    const s = await openSlide(path);
    try {
      expect(s.levels.map((l) => l.width)).toEqual([20480, 5120, 1280]);
    } finally {
      await s.close();
    }
  });

  it('distinct stored bytes count shared and overlapping ranges once, and nothing past the end of the file', () => {
    expect(distinctStoredBytes([100, 100, 100], [50, 50, 50], 1000)).toBe(50);
    expect(distinctStoredBytes([100, 120, 400], [50, 50, 10], 1000)).toBe(70 + 10);
    expect(distinctStoredBytes([990, 2000, 0], [50, 10, 10], 1000)).toBe(10);
  });
});
