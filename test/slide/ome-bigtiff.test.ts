import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { openSlide } from '../../worker/slide/open-slide.js';
import type { RgbImage } from '../../worker/slide/slide-source.js';
import { writeTiff } from '../tiff-writer.js';
import { CMU, diff, tempDir } from '../helpers.js';

async function crop(size: number, shrink: number): Promise<RgbImage> {
  const { data, info } = await sharp(CMU)
    .extract({ left: 800, top: 1800, width: size, height: size })
    .resize(Math.round(size / shrink))
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

const ome = (sizeX: number, unit: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="300" SizeY="300" SizeC="3" SizeZ="1" SizeT="1" PhysicalSizeX="${sizeX}" PhysicalSizeXUnit="${unit}" PhysicalSizeY="${sizeX}" PhysicalSizeYUnit="${unit}"/></Image></OME>`;

describe('OME-TIFF with a SubIFD pyramid, classic and BigTIFF', () => {
  for (const bigTiff of [false, true]) {
    it(`${bigTiff ? 'BigTIFF' : 'classic TIFF'}: levels from SubIFDs, mpp from OME-XML, pixels read back exactly`, async () => {
      const [l0, l1, l2] = await Promise.all([crop(512, 1), crop(512, 2), crop(512, 4)]);
      const path = join(tempDir(), `pyramid${bigTiff ? '-big' : ''}.ome.tif`);
      writeFileSync(path, writeTiff([{ image: l0, description: ome(0.25, 'µm'), subImages: [l1, l2] }], bigTiff));

      const s = await openSlide(path);
      expect(s.backend).toBe('sharp');
      expect(s.vendor).toBe('ome-tiff');
      expect(s.levels.map((l) => [l.width, l.height, l.downsample])).toEqual([
        [512, 512, 1],
        [256, 256, 2],
        [128, 128, 4],
      ]);
      expect(s.mpp).toEqual({ x: 0.25, y: 0.25 });
      expect(s.mppSource).toBe('vendor');
      for (const [level, img] of [[0, l0], [1, l1], [2, l2]] as const) {
        const r = await s.readRegion(level, 0, 0, img.width, img.height);
        expect(diff(r.data, img.data).max).toBe(0);
      }
      // An off-origin window of level 1, in level-0 coordinates.
      const part = await s.readRegion(1, 200, 100, 64, 32);
      const want = Buffer.alloc(64 * 32 * 3);
      for (let y = 0; y < 32; y++) l1.data.copy(want, y * 64 * 3, ((50 + y) * 256 + 100) * 3, ((50 + y) * 256 + 164) * 3);
      expect(diff(part.data, want).max).toBe(0);
    });
  }

  it('OME physical sizes in other units are converted to µm', async () => {
    const path = join(tempDir(), 'nm.ome.tif');
    writeFileSync(path, writeTiff([{ image: await crop(128, 1), description: ome(500, 'nm') }]));
    const s = await openSlide(path);
    expect(s.mpp?.x).toBeCloseTo(0.5, 9);
  });
});
