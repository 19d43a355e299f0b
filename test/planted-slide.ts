/**
 * A slide with anomalous regions for the viewer's tests: CMU-1-Small-Region with a foreign
 * texture (fine diagonal stripes in stain-like colours) pasted into dense tissue, written as a
 * tiled pyramidal TIFF that keeps the original 0.499 µm/px. Analysed with `--region-size 512`, the
 * self score puts its first anomalous region over the pasted box (test/pipeline/planted-anomaly).
 */
import { join } from 'node:path';
import sharp from 'sharp';
import { CMU } from './helpers.js';

/** Where the texture goes, level-0 pixels of the slide (2220 x 2967). */
export const PLANTED_BOX = { left: 960, top: 2240, size: 256 } as const;

function foreignTexture(size: number): Buffer {
  const px = Buffer.alloc(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const on = Math.floor((x + y) / 3) % 2 === 0;
      px.set(on ? [90, 40, 150] : [235, 150, 200], (y * size + x) * 3);
    }
  }
  return px;
}

/** Writes `<dir>/<name>` and returns its path. */
export async function writePlantedSlide(dir: string, name = 'planted-CMU-1.tif'): Promise<string> {
  const path = join(dir, name);
  const { left, top, size } = PLANTED_BOX;
  const pxPerMm = 1000 / 0.499; // sharp takes pixels per mm, whatever the unit tag says
  await sharp(CMU)
    .composite([{ input: foreignTexture(size), raw: { width: size, height: size, channels: 3 }, left, top }])
    .tiff({ tile: true, pyramid: true, compression: 'jpeg', quality: 90, resolutionUnit: 'cm', xres: pxPerMm, yres: pxPerMm })
    .toFile(path);
  return path;
}
