/**
 * Damaged JPEG tiles in a real Aperio SVS (issue 13): one policy for both backends. The TIFF
 * loader alone would decode the scrambled data into plausible garbage and the slide would finish
 * with a different heatmap; OpenSlide refuses it. Both now fail the read, naming the place, and
 * an analysis of the slide fails instead of filing a wrong result. That holds for damage libvips'
 * own fail-on-warning misses (a libjpeg warning from a tile's last MCU row: a zero run, a
 * shortened entropy-coded segment) and for a byte count past the end of the file.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import sharp from 'sharp';
import { openSlide } from '../../worker/slide/open-slide.js';
import { CorruptSlideError } from '../../worker/slide/errors.js';
import { entropyDamage } from '../../worker/slide/jpeg-tile.js';
import { openSlideAvailable } from '../../worker/slide/openslide-source.js';
import { CMU, cli, tempDir } from '../helpers.js';
import { damagedCmu, storedTiles, type Damage } from '../damaged-slide.js';

const SHARP_SAYS: Record<Damage, RegExp> = {
  scrambled: /its JPEG data does not decode cleanly \(.+\)/,
  'zero-run': /its JPEG data does not decode cleanly \(Corrupt JPEG data: premature end of data segment \(MCU \d+,\d+ of 30x30\)\)/,
  truncated: /its JPEG data does not decode cleanly \(Corrupt JPEG data: premature end of data segment \(MCU \d+,\d+ of 30x30\)\)/,
  'past-eof': /its \d+ bytes at byte \d+ run past the end of the file/,
};
const OPENSLIDE_SAYS: Record<Damage, RegExp> = {
  scrambled: /Corrupt JPEG data/,
  'zero-run': /Corrupt JPEG data: premature end of data segment/,
  truncated: /Corrupt JPEG data: premature end of data segment/,
  'past-eof': /Can't read/,
};

describe.each(['scrambled', 'zero-run', 'truncated', 'past-eof'] as const)('a %s JPEG tile in an Aperio SVS', (how) => {
  const dir = tempDir();
  const path = join(dir, 'damaged-CMU.svs');
  damagedCmu(path, [[1300, 800]], how);

  it('fails the read on the sharp backend, naming the tile; intact places still read', async () => {
    const s = await openSlide(path, { backend: 'sharp' });
    try {
      const err = await s.readRegion(0, 1200, 720, 256, 256).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CorruptSlideError);
      expect((err as Error).message).toMatch(/level 0 tile \(5, 3\) at level pixels \(1200, 720\) is damaged: /);
      expect((err as Error).message).toMatch(SHARP_SAYS[how]);
      // The same read again fails again (a damaged tile is not remembered as checked), and so
      // does a region that only overlaps it.
      await expect(s.readRegion(0, 1250, 750, 64, 64)).rejects.toThrow(/tile \(5, 3\)/);
      await expect(s.readRegion(0, 1024, 512, 1024, 1024)).rejects.toThrow(/tile \(5, 3\)/);
      expect((await s.readRegion(0, 0, 0, 480, 480)).data.length).toBe(480 * 480 * 3);
    } finally {
      await s.close();
    }
  });

  it.skipIf(!openSlideAvailable())('fails on the OpenSlide backend too', async () => {
    const read = async (): Promise<void> => {
      const s = await openSlide(path, { backend: 'openslide' });
      try {
        await s.readRegion(0, 1200, 720, 256, 256);
      } finally {
        await s.close();
      }
    };
    await expect(read()).rejects.toThrow(OPENSLIDE_SAYS[how]);
  });

  it('fails the analysis with the reason, instead of a heatmap of garbage', () => {
    const data = join(dir, 'data');
    const r = cli(['analyze', path, '--data', data, '--device', 'cpu']);
    expect(r.stdout).toMatch(/^FAILED +.*damaged-CMU\.svs: .*tile \(5, 3\) .* is damaged/m);
    expect(r.code).toBe(3);
  });
});

/**
 * A 64 x 64 px grey JPEG of value 128: every block is "DC difference 0, end of block", coded with
 * one-code tables (DC "0" -> 0, AC "0" -> EOB; a 1 bit is a code in no table), so its
 * entropy-coded data is zero bytes, 2 bits per block. `restart`: a restart marker after each row
 * of 8 blocks; `rows` edits each row's data (and the marker after it) before they are joined.
 */
function greyJpeg(restart: boolean, edit: (rows: Buffer[], markers: number[]) => void = () => undefined): Buffer {
  const rows = Array.from({ length: 8 }, () => Buffer.alloc(2));
  const markers = [0, 1, 2, 3, 4, 5, 6];
  edit(rows, markers);
  const parts = [
    Buffer.from([0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, ...new Array<number>(64).fill(1)]),
    Buffer.from([0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x40, 0x00, 0x40, 0x01, 0x01, 0x11, 0x00]),
    Buffer.from([0xff, 0xc4, 0x00, 0x14, 0x00, 0x01, ...new Array<number>(15).fill(0), 0x00]),
    Buffer.from([0xff, 0xc4, 0x00, 0x14, 0x10, 0x01, ...new Array<number>(15).fill(0), 0x00]),
    ...(restart ? [Buffer.from([0xff, 0xdd, 0x00, 0x04, 0x00, 0x08])] : []),
    Buffer.from([0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00]),
  ];
  rows.forEach((row, i) => {
    parts.push(row);
    const m = markers[i];
    if (restart && m !== undefined) parts.push(Buffer.from([0xff, 0xd0 + m]));
  });
  parts.push(Buffer.from([0xff, 0xd9]));
  return Buffer.concat(parts);
}

async function libjpegWarns(jpeg: Buffer): Promise<boolean> {
  return sharp(jpeg, { failOn: 'warning' }).raw().toBuffer().then(() => false, () => true);
}

describe('the entropy check of a stored JPEG tile (entropyDamage)', () => {
  it('reports what libjpeg warns about, where libvips sees the warning (damage in the first MCU rows)', async () => {
    const cases: [string, Buffer, RegExp | null][] = [
      ['intact, restart markers', greyJpeg(true), null],
      ['intact, none', greyJpeg(false), null],
      ['a code in no table', greyJpeg(true, (r) => r[0]!.writeUInt8(0x80, 0)), /bad Huffman code \(MCU 0,0 of 8x8\)/],
      ['a row short of data', greyJpeg(true, (r) => (r[0] = Buffer.alloc(1))), /premature end of data segment \(MCU 4,0 of 8x8\)/],
      ['bytes too many before a restart marker', greyJpeg(true, (r) => (r[0] = Buffer.alloc(16))), /14 extraneous bytes before the restart marker \(MCU 0,1 of 8x8\)/],
      ['restart markers out of sequence', greyJpeg(true, (_, m) => m.splice(0, 1)), /restart marker 0 missing or out of sequence \(MCU 0,1 of 8x8\)/],
      ['no restart marker at all', greyJpeg(true, (_, m) => m.splice(0)), /14 extraneous bytes before the restart marker \(MCU 0,1 of 8x8\)/],
    ];
    for (const [what, jpeg, says] of cases) {
      const damage = entropyDamage(jpeg);
      if (says === null) expect(damage, what).toBeNull();
      else expect(damage, what).toMatch(says);
      expect(await libjpegWarns(jpeg), `${what}: libjpeg agrees`).toBe(says !== null);
    }
  });

  it('is stricter than libjpeg about a few bytes too many before a restart marker', () => {
    // libjpeg warns only about those beyond its bit buffer's read-ahead (up to 7 bytes).
    expect(entropyDamage(greyJpeg(true, (r) => (r[0] = Buffer.alloc(3))))).toMatch(/1 extraneous bytes before the restart marker \(MCU 0,1 of 8x8\)/);
  });

  it('reports damage in the last MCU row, which libvips lets through', () => {
    // Two bits short in the last row: the decoder runs out of data in its last block.
    const jpeg = greyJpeg(false, (r) => (r[7] = Buffer.from([0x00, 0x3f])));
    expect(entropyDamage(greyJpeg(false, (r) => (r[7] = Buffer.from([0x00, 0x00]))))).toBeNull();
    expect(entropyDamage(Buffer.concat([jpeg.subarray(0, jpeg.length - 3), jpeg.subarray(jpeg.length - 2)]))).toMatch(/premature end of data segment \(MCU \d,7 of 8x8\)/);
  });

  it('finds nothing in intact tiles: every stored tile of CMU-1 and of JPEG pyramids sharp writes (RGB, grey)', async () => {
    const dir = tempDir();
    const files = [CMU, join(dir, 'rgb.tif'), join(dir, 'grey.tif')];
    await sharp(CMU).tiff({ tile: true, pyramid: true, compression: 'jpeg', quality: 90 }).toFile(files[1]!);
    await sharp(CMU).greyscale().tiff({ tile: true, pyramid: true, compression: 'jpeg', quality: 75, tileWidth: 512, tileHeight: 512 }).toFile(files[2]!);
    for (const f of files) {
      const s = await openSlide(f, { backend: 'sharp' });
      try {
        const tiles = await storedTiles(s);
        for (const t of tiles) expect(entropyDamage(t.jpeg), `${f} ${t.where}`).toBeNull();
        expect(tiles.length, f).toBeGreaterThan(10);
      } finally {
        await s.close();
      }
    }
  });
});

describe('regions composed from the stored JPEG tiles', () => {
  it('are the pixels libvips decodes, at any window (aligned or not, at the edges)', async () => {
    const s = await openSlide(CMU, { backend: 'sharp' });
    try {
      for (const [x, y, w, h] of [[0, 0, 1024, 1024], [100, 37, 700, 513], [1200, 1900, 1020, 1067], [255, 255, 2, 2], [s.width - 300, s.height - 200, 300, 200]] as const) {
        const ours = (await s.readRegion(0, x, y, w, h)).data;
        const vips = await sharp(CMU, { limitInputPixels: false }).extract({ left: x, top: y, width: w, height: h }).removeAlpha().raw().toBuffer();
        expect(ours.equals(vips), `window ${x},${y} ${w}x${h}`).toBe(true);
      }
    } finally {
      await s.close();
    }
  });
});

