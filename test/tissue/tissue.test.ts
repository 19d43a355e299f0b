import { afterAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { openSlide } from '../../worker/slide/open-slide.js';
import { findTissue } from '../../worker/tissue/tissue-map.js';
import { detectTissue, otsuThreshold } from '../../worker/tissue/tissue-mask.js';
import { close, dilate, erode, open, removeSmallComponents } from '../../worker/tissue/morphology.js';
import { readOverview } from '../../worker/tissue/overview.js';
import type { RgbImage, SlideSource } from '../../worker/slide/slide-source.js';
import { BOXES, CMU, KIDNEY, NDPI } from '../helpers.js';

function solid(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { data, width, height };
}

function paint(img: RgbImage, x0: number, y0: number, w: number, h: number, rgb: [number, number, number]): void {
  for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) img.data.set(rgb, (y * img.width + x) * 3);
}

describe('Otsu and morphology', () => {
  it('Otsu splits a bimodal histogram between its modes', () => {
    const hist = new Array<number>(256).fill(0);
    for (let i = 0; i < 20; i++) hist[10 + i] = 100;
    for (let i = 0; i < 20; i++) hist[150 + i] = 60;
    const t = otsuThreshold(hist);
    expect(t).toBeGreaterThanOrEqual(29);
    expect(t).toBeLessThan(150);
  });

  it('closing fills a 1-px gap, opening and component filtering drop specks', () => {
    const w = 20;
    const h = 10;
    const m = new Uint8Array(w * h);
    for (let y = 2; y < 8; y++) for (let x = 2; x < 18; x++) m[y * w + x] = x === 10 ? 0 : 1;
    const closed = close(m, w, h, 1);
    expect(closed[5 * w + 10]).toBe(1);
    const speck = new Uint8Array(w * h);
    speck[5 * w + 5] = 1;
    expect(open(speck, w, h, 1).every((v) => v === 0)).toBe(true);
    const two = new Uint8Array(w * h);
    two[0] = 1;
    for (let y = 4; y < 9; y++) for (let x = 10; x < 15; x++) two[y * w + x] = 1;
    expect(removeSmallComponents(two, w, h, 4)).toBe(1);
    expect(two[0]).toBe(0);
    expect(two[6 * w + 12]).toBe(1);
  });
});

/** Square-window dilation/erosion straight from the definition (out-of-image: background for dilation, foreground for erosion). */
function naiveMorph(m: Uint8Array, w: number, h: number, r: number, dilateOp: boolean): Uint8Array {
  const out = new Uint8Array(m.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let any = false;
      for (let dy = -r; dy <= r && !any; dy++) {
        for (let dx = -r; dx <= r && !any; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          any = dilateOp ? m[yy * w + xx] === 1 : m[yy * w + xx] === 0;
        }
      }
      out[y * w + x] = dilateOp ? (any ? 1 : 0) : any ? 0 : 1;
    }
  }
  return out;
}

describe('morphology against its definition', () => {
  it('dilation and erosion equal the brute-force square window on random masks, radii 0-4, odd shapes', () => {
    let seed = 12345;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (const [w, h] of [[1, 1], [7, 3], [3, 9], [31, 17], [64, 40]] as const) {
      for (const density of [0.1, 0.5, 0.9]) {
        const m = Uint8Array.from({ length: w * h }, () => (rand() < density ? 1 : 0));
        for (let r = 0; r <= 4; r++) {
          expect(Array.from(dilate(m, w, h, r)), `dilate ${w}x${h} r${r}`).toEqual(Array.from(naiveMorph(m, w, h, r, true)));
          expect(Array.from(erode(m, w, h, r)), `erode ${w}x${h} r${r}`).toEqual(Array.from(naiveMorph(m, w, h, r, false)));
        }
      }
    }
  });
});

describe('tissue detection on synthetic images', () => {
  it('empty glass (with sensor noise) has no tissue', () => {
    const img = solid(200, 150, [242, 242, 240]);
    for (let i = 0; i < img.data.length; i += 7) img.data[i] = 235 + (i % 9);
    expect(detectTissue(img).tissueFraction).toBe(0);
  });

  it('stained tissue on glass is found, black borders and green pen are not', () => {
    const img = solid(200, 200, [240, 240, 238]);
    paint(img, 50, 50, 100, 100, [200, 120, 170]); // eosin-pink tissue, 25 % of the image
    paint(img, 0, 0, 200, 10, [5, 5, 5]); // scanner border
    paint(img, 10, 160, 150, 8, [40, 160, 70]); // green marker stroke
    const d = detectTissue(img);
    expect(d.mode).toBe('brightfield');
    expect(d.tissueFraction).toBeGreaterThan(0.23);
    expect(d.tissueFraction).toBeLessThan(0.28);
    expect(d.mask[5 * 200 + 100]).toBe(0);
    expect(d.mask[164 * 200 + 80]).toBe(0);
    expect(d.mask[100 * 200 + 100]).toBe(1);
  });

  it('a dark background switches to fluorescence mode', () => {
    const img = solid(100, 100, [8, 8, 12]);
    paint(img, 20, 20, 40, 40, [30, 60, 200]); // DAPI-blue signal
    const d = detectTissue(img);
    expect(d.mode).toBe('fluorescence');
    expect(d.tissueFraction).toBeCloseTo(0.16, 2);
  });
});

describe('tissue on real slides', () => {
  // Every slide opened here is closed at the end (an open file left to the garbage collector warns).
  const opened: SlideSource[] = [];
  const openTracked = async (path: string): Promise<SlideSource> => {
    const s = await openSlide(path);
    opened.push(s);
    return s;
  };
  afterAll(async () => {
    await Promise.all(opened.map((s) => s.close()));
  });

  it('CMU-1: a plausible fraction, and the mask agrees with the pixels', async () => {
    const s = await openTracked(CMU);
    const t = await findTissue(s);
    expect(t.detection.mode).toBe('brightfield');
    expect(t.tissueFraction).toBeGreaterThan(0.3);
    expect(t.tissueFraction).toBeLessThan(0.6);
    // The top-left corner is glass and the lower centre dense tissue (see the slide's thumbnail).
    expect(t.count(0, 0, 200, 200).tissue).toBe(0);
    const dense = t.count(900, 2400, 400, 400);
    expect(dense.tissue / dense.total).toBeGreaterThan(0.9);
    // Mask resolution: ~4 µm per mask pixel.
    expect(t.downsampleX * 0.499).toBeCloseTo(4, 0);
    const png = await t.toPng();
    const meta = await sharp(png).metadata();
    expect([meta.width, meta.height]).toEqual([t.width, t.height]);
  });

  it('NDPI fluorescence: detected as fluorescence, mostly tissue', async () => {
    const t = await findTissue(await openTracked(NDPI));
    expect(t.detection.mode).toBe('fluorescence');
    expect(t.tissueFraction).toBeGreaterThan(0.5);
    expect(t.tissueFraction).toBeLessThan(0.98);
  });

  it('kidney strip: a small fragment on mostly glass', async () => {
    const t = await findTissue(await openTracked(KIDNEY));
    expect(t.tissueFraction).toBeGreaterThan(0.001);
    expect(t.tissueFraction).toBeLessThan(0.05);
  });

  it('overview from a coarser pyramid level matches one computed from level 0', async () => {
    const s = await openTracked(BOXES);
    const fromLevel1 = await readOverview(s, 2); // level 1 has downsample 2: read as is
    expect(fromLevel1.level).toBe(1);
    const fromLevel0 = await readOverview(s, 1.9); // no level at 1.9: averaged from level 0
    expect(fromLevel0.level).toBe(0);
    expect(fromLevel1.image.width).toBe(150);
    expect(fromLevel0.image.width).toBe(158);
  });
});
