/**
 * The files mutants are made from: every real slide in test/fixtures/slides, plus small generated
 * ones for layouts the fixtures lack (a multi-level JPEG pyramid with tissue and mpp, WebP tiles,
 * LZW strips, an OME BigTIFF with SubIFDs, a Deflate strip TIFF, plain PNG and JPEG). Generation
 * is deterministic, so a seed and an index name one mutant on any machine with the same sharp.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp, { type Sharp } from 'sharp';
import { writeTiff } from '../tiff-writer.js';
import { craftTiff } from './crafted-tiff.js';

/** The checkout: the nearest folder above this module with bin/flashslide.js (from test/fuzz/ or dist/test/fuzz/). */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'bin', 'flashslide.js'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the checkout (bin/flashslide.js) above the fuzzer');
    dir = up;
  }
  return dir;
}

export const ROOT = findRoot();
export const FIXTURES = join(ROOT, 'test', 'fixtures', 'slides');

export interface SeedFile {
  readonly name: string;
  readonly path: string;
  readonly bytes: Buffer;
}

/** A crop of the real H&E fixture (tissue in the middle of CMU-1-Small-Region). */
async function tissue(width: number, height: number): Promise<Sharp> {
  return sharp(join(FIXTURES, 'CMU-1-Small-Region.svs')).extract({ left: 600, top: 900, width, height });
}

async function rgb(width: number, height: number): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await (await tissue(width, height)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

async function generate(dir: string): Promise<void> {
  const pxPerMm = 1000 / 0.5;
  const res = { resolutionUnit: 'cm', xres: pxPerMm, yres: pxPerMm } as const;
  await (await tissue(1536, 1536)).tiff({ tile: true, tileWidth: 256, tileHeight: 256, pyramid: true, compression: 'jpeg', quality: 80, ...res }).toFile(join(dir, 'gen-jpeg-pyramid.tif'));
  await (await tissue(512, 512)).tiff({ tile: true, tileWidth: 128, tileHeight: 128, compression: 'webp', ...res }).toFile(join(dir, 'gen-webp-tiles.tif'));
  await (await tissue(800, 600)).tiff({ compression: 'lzw', ...res }).toFile(join(dir, 'gen-lzw-strips.tif'));
  const full = await rgb(512, 512);
  const half = await rgb(256, 256);
  const quarter = await rgb(128, 128);
  const ome = '<?xml version="1.0"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0"><Pixels PhysicalSizeX="0.5" PhysicalSizeY="0.5" PhysicalSizeXUnit="µm" SizeX="512" SizeY="512"/></Image></OME>';
  writeFileSync(join(dir, 'gen-ome-bigtiff.ome.tif'), writeTiff([{ image: full, description: ome, subImages: [half, quarter] }], true));
  writeFileSync(
    join(dir, 'gen-deflate-strips.tif'),
    craftTiff([
      { width: 1024, height: 1024, layout: { kind: 'strip', rowsPerStrip: 32 }, fill: [230, 160, 200], mpp: 0.5 },
      { width: 256, height: 256, layout: { kind: 'strip', rowsPerStrip: 64 }, fill: [230, 160, 200] },
    ]),
  );
  await (await tissue(400, 400)).png().toFile(join(dir, 'gen-raster.png'));
  await (await tissue(400, 400)).jpeg({ quality: 85 }).toFile(join(dir, 'gen-raster.jpg'));
}

/** The real fixtures (sorted) then the generated files, written under `workDir`/seeds. */
export async function prepareSeeds(workDir: string): Promise<SeedFile[]> {
  const dir = join(workDir, 'seeds');
  mkdirSync(dir, { recursive: true });
  await generate(dir);
  const real = readdirSync(FIXTURES)
    .filter((n) => n !== 'README.md')
    .sort()
    .map((name) => ({ name, path: join(FIXTURES, name) }));
  const generated = readdirSync(dir)
    .sort()
    .map((name) => ({ name, path: join(dir, name) }));
  return [...real, ...generated].map((s) => ({ ...s, bytes: readFileSync(s.path) }));
}
