// A synthetic gigapixel slide for the benches: real tissue (CMU-1-Small-Region.svs and its
// flips) tiled over a size x size canvas of glass, written as a tiled JPEG pyramid at the
// original 0.499 µm/px, like a scanner's export. Takes a minute or more at 40000 px.
import { renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Where the tissue tiles are: the mosaic's layout, for benches that place things on tissue. */
export const MOSAIC_TILE = { width: 2220, height: 2967, gap: 400 };

/** `variant` rotates which flip each tile gets: mosaics of other variants are other slides (other content ids) of the same size and tissue. */
export async function synthesiseMosaic(size, path, variant = 0) {
  const src = join(root, 'test', 'fixtures', 'slides', 'CMU-1-Small-Region.svs');
  const base = await sharp(src).raw().toBuffer({ resolveWithObject: true });
  const { width: tw, height: th } = base.info;
  const flips = [(s) => s, (s) => s.flop(), (s) => s.flip(), (s) => s.flip().flop()];
  const variants = await Promise.all(flips.map((f) => f(sharp(base.data, { raw: { width: tw, height: th, channels: 3 } })).png({ compressionLevel: 0 }).toBuffer()));
  const gap = MOSAIC_TILE.gap;
  const overlays = [];
  let k = variant;
  for (let y = 0; y + th <= size; y += th + gap) for (let x = 0; x + tw <= size; x += tw + gap) overlays.push({ input: variants[k++ % 4], left: x, top: y });
  await sharp({ create: { width: size, height: size, channels: 3, background: { r: 242, g: 242, b: 240 } }, limitInputPixels: false })
    .composite(overlays)
    .tiff({ tile: true, tileWidth: 256, tileHeight: 256, pyramid: true, compression: 'jpeg', quality: 85, resolutionUnit: 'cm', xres: 1000 / 0.499, yres: 1000 / 0.499, bigtiff: true })
    .toFile(`${path}.part`);
  renameSync(`${path}.part`, path);
}
