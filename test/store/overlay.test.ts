import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { overlayFigure, overlayLayout, renderOverlay, OVERLAY_DEFAULTS, type OverlayInput } from '../../worker/store/overlay.js';
import type { HeatmapMeta } from '../../worker/store/heatmap-json.js';
import type { RankedRegion } from '../../worker/store/result-types.js';
import { colormapLut, colourRange, lutIndex, COLORMAPS } from '../../worker/store/colormap.js';
import { rankLabel } from '../../worker/store/region-outline.js';
import { regionAnchor } from '../../worker/store/region-labels.js';
import { ticks, formatTick } from '../../worker/store/overlay-legend.js';
import { colourTable } from '../../viewer/app/src/heatmap-colour.js';
import type { RgbImage } from '../../worker/slide/slide-source.js';
import { KIDNEY } from '../helpers.js';

/** A real H&E picture: the kidney strip fixture's tissue, stretched to `w` x `h`. */
async function hne(w = 1200, h = 800): Promise<RgbImage> {
  const { data, info } = await sharp(KIDNEY).extract({ left: 280, top: 490, width: 150, height: 100 }).resize(w, h, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

async function decode(png: Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(3);
  return { data, width: info.width, height: info.height };
}

/** The heatmap meta of a slide `w` x `h` px covered by a rows x cols grid of `cell` px cells. */
function meta(rows: number, cols: number, cell: number, w: number, h: number, min: number | null, max: number | null, threshold: number): HeatmapMeta {
  return {
    formatVersion: 1, slideId: 'x', slidePath: '/x.svs', width: w, height: h, mpp: 0.5, rows, cols, patchSizeLevel0: cell, originX: 0, originY: 0,
    regionSize: 1024, model: 'm', scoreMethod: 'self', scoreParams: {}, min, max, threshold, createdAt: '', flashslideVersion: '0',
  };
}

/** A rectangle of cells (r0..r1, c0..c1) as a ranked region, level-0 pixels. */
function square(rank: number, r0: number, c0: number, r1: number, c1: number, cell: number): RankedRegion {
  const [x0, y0, x1, y1] = [c0 * cell, r0 * cell, (c1 + 1) * cell, (r1 + 1) * cell];
  return {
    id: `r${rank}`, rank, name: `Anomaly ${rank}`, scoreMax: 1, scoreMean: 1, areaUm2: 1, cells: 1,
    bbox: [x0, y0, x1 - x0, y1 - y0], centroid: [(x0 + x1) / 2, (y0 + y1) / 2],
    outline: [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
  };
}

const at = (img: RgbImage, x: number, y: number): [number, number, number] => {
  const p = (Math.round(y) * img.width + Math.round(x)) * 3;
  return [img.data[p] as number, img.data[p + 1] as number, img.data[p + 2] as number];
};
const dist = (a: readonly number[], b: readonly number[]): number => Math.hypot((a[0] as number) - (b[0] as number), (a[1] as number) - (b[1] as number), (a[2] as number) - (b[2] as number));
const lutRgb = (k: number): [number, number, number] => {
  const lut = colormapLut('inferno');
  return [lut[k * 3] as number, lut[k * 3 + 1] as number, lut[k * 3 + 2] as number];
};
const CYAN = [0x1a, 0xd1, 0xff];
/** Pixels of a box that are the ring's colour. */
function countNear(img: RgbImage, x0: number, y0: number, x1: number, y1: number, colour: readonly number[], within: number): number {
  let n = 0;
  for (let y = Math.max(0, Math.round(y0)); y < Math.min(img.height, Math.round(y1)); y++) for (let x = Math.max(0, Math.round(x0)); x < Math.min(img.width, Math.round(x1)); x++) if (dist(at(img, x, y), colour) < within) n++;
  return n;
}

describe('overlay.png, a figure', () => {
  // A 12000 x 8000 px slide, 12 x 8 cells of 1000 px.
  const W = 12000;
  const H = 8000;
  const grid = (fill: (r: number, c: number) => number): Float32Array => Float32Array.from({ length: 96 }, (_, i) => fill(Math.floor(i / 12), i % 12));
  const input = (over: Partial<OverlayInput>): OverlayInput => ({
    slideWidth: W, slideHeight: H, thumbnail: null, heatmap: { grid: grid(() => 1), meta: meta(8, 12, 1000, W, H, 0, 2, 1.5) }, tissuePng: null, regions: [], title: 'slide.svs', subtitle: 'model · score self · 0 anomalous regions', ...over,
  });

  it("is 2000 px on the slide image's long side by default (configurable), with a header above and a footer below", async () => {
    const { png, layout } = await overlayFigure(input({ thumbnail: await hne() }));
    const out = await decode(png);
    expect(OVERLAY_DEFAULTS.longSide).toBe(2000);
    expect(layout.image).toMatchObject({ width: 2000, height: 1333, left: 0 });
    expect([out.width, out.height]).toEqual([layout.canvas.width, layout.canvas.height]);
    expect(layout.image.top).toBeGreaterThan(60); // the header
    expect(out.height - layout.image.top - layout.image.height).toBeGreaterThan(150); // the footer
    // Portrait, and another size.
    expect(overlayLayout({ ...input({}), slideWidth: H, slideHeight: W }).image).toMatchObject({ width: 1333, height: 2000 });
    expect(overlayLayout(input({}), { longSide: 3000 }).image.width).toBe(3000);
    // The title is drawn: dark text on white in the header's first line.
    const titleRow = countNear(out, 20, 10, 400, layout.image.top - 30, [0x15, 0x20, 0x2b], 60);
    expect(titleRow).toBeGreaterThan(200);
  });

  it("colours a score as the viewer does: the viewer's table over the slide's [min, max]", async () => {
    // Uniform grey glass; every cell at or above the threshold (drawn strongly).
    const grey = 200;
    const thumb: RgbImage = { data: Buffer.alloc(1200 * 800 * 3, grey), width: 1200, height: 800 };
    const g = grid((r, c) => (r * 12 + c) / 95 * 7);
    const { png, layout } = await overlayFigure(input({ thumbnail: thumb, heatmap: { grid: g, meta: meta(8, 12, 1000, W, H, 0, 7, 0) } }));
    const out = await decode(png);
    const h = { offset: 0, scale: 7 / 255, min: 0, max: 7 };
    const table = colourTable('inferno', 0, h);
    const a = OVERLAY_DEFAULTS.opacityHot;
    const scale = layout.image.width / W;
    for (const [r, c] of [[0, 3], [3, 5], [6, 1], [7, 11]] as const) {
      const q = Math.round((((r * 12 + c) / 95) * 7) / h.scale);
      const viewer = [table[q * 4] as number, table[q * 4 + 1] as number, table[q * 4 + 2] as number];
      const expected = viewer.map((v) => grey * (1 - a) + v * a);
      expect(dist(at(out, (c + 0.5) * 1000 * scale, layout.image.top + (r + 0.5) * 1000 * scale), expected)).toBeLessThan(6);
    }
  });

  it("has a colour bar of the viewer's ramp from min to max, with numbered ticks and the threshold marked and labelled", async () => {
    const { png, layout } = await overlayFigure(input({ heatmap: { grid: grid((r) => r), meta: meta(8, 12, 1000, W, H, 0, 7, 5.6) } }));
    const out = await decode(png);
    const bar = layout.bar;
    expect(bar).not.toBeNull();
    if (bar === null) return;
    const { x, y, width, height } = bar;
    for (const t of [0.1, 0.3, 0.5, 0.7, 0.95]) expect(dist(at(out, x + t * width, y + height / 2), lutRgb(Math.round(t * 255)))).toBeLessThan(24);
    // The threshold marker: a dark bar across the ramp at 5.6 / 7 = 80 % of its width, where the ramp is bright.
    expect(Math.max(...at(out, x + 0.8 * width, y + height / 2))).toBeLessThan(60);
    expect(Math.max(...at(out, x + 0.86 * width, y + height / 2))).toBeGreaterThan(200);
    // Its label: dark red text on the line above the bar, near the marker.
    expect(countNear(out, x + 0.8 * width - 40, y - 40, x + 0.8 * width + 400, y - 4, [0xa3, 0x10, 0x1c], 70)).toBeGreaterThan(40);
    // Ticks at 0..7 (step 1), each with its number under it: dark pixels below the bar there.
    expect(ticks(0, 7, width, 15).values).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (let v = 1; v <= 6; v++) {
      const tx = x + (v / 7) * width;
      expect(countNear(out, tx - 12, y + height + 8, tx + 12, y + height + 34, [0x3c, 0x48, 0x54], 90)).toBeGreaterThan(8);
    }
    // Without tissue there is nothing to scale: no bar.
    expect((await overlayFigure(input({ heatmap: { grid: grid(() => Number.NaN), meta: meta(8, 12, 1000, W, H, null, null, Infinity) } }))).layout.bar).toBeNull();
  });

  it('leaves a slide without anomalies as H&E: below the threshold cells are faint, at or above strong', async () => {
    const thumb = await hne();
    const plain = await decode(await renderOverlay(input({ thumbnail: thumb, heatmap: { grid: grid(() => Number.NaN), meta: meta(8, 12, 1000, W, H, null, null, Infinity) } })));
    // Scores spread over 0..5, the threshold above them all (0 anomalous cells, 0 regions).
    const spread = grid((r, c) => ((r * 7 + c * 5) % 11) / 2);
    const calm = await overlayFigure(input({ thumbnail: thumb, heatmap: { grid: spread, meta: meta(8, 12, 1000, W, H, 0, 5, 5.2) } }));
    // The same scores with the threshold at the bottom: every cell anomalous.
    const hot = await overlayFigure(input({ thumbnail: thumb, heatmap: { grid: spread, meta: meta(8, 12, 1000, W, H, 0, 5, 0) } }));
    const strong = async (png: Buffer): Promise<number> => {
      const img = await decode(png);
      let n = 0;
      let all = 0;
      for (let y = calm.layout.image.top + 3; y < calm.layout.image.top + calm.layout.image.height - 3; y += 7) {
        for (let x = 3; x < 1997; x += 7) {
          all++;
          if (dist(at(img, x, y), at(plain, x, y)) > 60) n++;
        }
      }
      return n / all;
    };
    expect(await strong(calm.png)).toBeLessThan(0.01);
    expect(await strong(hot.png)).toBeGreaterThan(0.6);
    // Faint is not nothing: just below the threshold a cell tints the slide, the lowest scores not at all.
    const img = await decode(calm.png);
    const s = calm.layout.image.width / W;
    const cell = (r: number, c: number): number => dist(at(img, (c + 0.5) * 1000 * s, calm.layout.image.top + (r + 0.5) * 1000 * s), at(plain, (c + 0.5) * 1000 * s, calm.layout.image.top + (r + 0.5) * 1000 * s));
    expect(cell(0, 2)).toBeGreaterThan(8); // (0*7 + 2*5) % 11 / 2 = 5: just below 5.2
    expect(cell(0, 0)).toBeLessThan(2); // score 0
  });

  it('rings the regions where they are, and nowhere else', async () => {
    const { png, layout } = await overlayFigure(input({ thumbnail: await hne(), regions: [square(1, 2, 2, 4, 4, 1000), square(2, 5, 8, 6, 10, 1000)] }));
    const out = await decode(png);
    const scale = layout.image.width / W;
    const { top, left } = layout.image;
    const u = layout.unit;
    const ringAt = 0.8 * u + 0.3 * u; // gap + half the ring's width, outside the cells
    for (const [bx, by, bw, bh] of [[2000, 2000, 3000, 3000], [8000, 5000, 3000, 2000]] as const) {
      const midY = top + (by + bh / 2) * scale;
      const midX = left + (bx + bw / 2) * scale;
      expect(dist(at(out, left + bx * scale - ringAt, midY), CYAN)).toBeLessThan(50); // left
      expect(dist(at(out, left + (bx + bw) * scale + ringAt, midY), CYAN)).toBeLessThan(50); // right
      expect(dist(at(out, midX, top + by * scale - ringAt), CYAN)).toBeLessThan(50); // top
      expect(dist(at(out, midX, midY), CYAN)).toBeGreaterThan(80); // inside: the slide
    }
    // No ring colour away from the regions (the top-left and bottom-left of the slide, 600 px clear of region 1).
    expect(countNear(out, left, top, left + 1500 * scale, top + 1500 * scale, CYAN, 50)).toBe(0);
    expect(countNear(out, left, top + 5600 * scale, left + 7500 * scale, top + 8000 * scale, CYAN, 50)).toBe(0);
  });

  it('rings a region smaller than a pixel of the figure', async () => {
    // 40000 px slide of 16 px cells: one cell is 0.8 px at 2000 px.
    const S = 40000;
    const { png, layout } = await overlayFigure({
      ...input({}), slideWidth: S, slideHeight: S, heatmap: { grid: new Float32Array(4).fill(1), meta: meta(2, 2, 20000, S, S, 0, 2, 1.5) }, regions: [square(1, 1000, 1000, 1000, 1000, 16)],
    });
    const out = await decode(png);
    const s = layout.image.width / S;
    const cx = 1000 * 16 * s;
    const cy = layout.image.top + 1000 * 16 * s;
    // The ring's lower-left quarter (its label sits above and to the right).
    expect(countNear(out, cx - 12, cy, cx, cy + 12, CYAN, 50)).toBeGreaterThan(5);
    expect(countNear(out, cx - 40, cy + 20, cx - 20, cy + 40, CYAN, 50)).toBe(0);
  });

  it('numbers each region by its own rank beside it, also where regions touch and share a ring', async () => {
    const regions = [square(2, 1, 1, 2, 2, 1000), square(1, 5, 8, 6, 10, 1000), square(3, 3, 3, 3, 3, 1000) /* touches 2 at a corner */];
    const { png, labels, layout } = await overlayFigure(input({ thumbnail: await hne(), regions }));
    const out = await decode(png);
    expect(labels.map((l) => l.text).sort()).toEqual(['1', '2', '3']);
    const scale = layout.image.width / W;
    for (const l of labels) {
      // Beside its region: the label box within a few units of the region's box.
      const r = regions.find((g) => g.rank === l.rank) as RankedRegion;
      const x0 = layout.image.left + r.bbox[0] * scale;
      const x1 = x0 + r.bbox[2] * scale;
      const y0 = layout.image.top + r.bbox[1] * scale;
      const y1 = y0 + r.bbox[3] * scale;
      const gapX = Math.max(0, x0 - (l.x + l.width), l.x - x1);
      const gapY = Math.max(0, y0 - (l.y + l.height), l.y - y1);
      expect(Math.hypot(gapX, gapY)).toBeLessThan(layout.unit * 6);
      // A dark pill with white figures in it.
      let dark = 0;
      let white = 0;
      for (let y = l.y + 2; y < l.y + l.height - 2; y++) {
        for (let x = l.x + 2; x < l.x + l.width - 2; x++) {
          const v = at(out, x, y);
          if (Math.max(...v) < 60) dark++;
          if (Math.min(...v) > 200) white++;
        }
      }
      expect(dark).toBeGreaterThan(l.width * l.height * 0.3);
      expect(white).toBeGreaterThan(15 * l.text.replace(/\D/g, '').length);
    }
    // Labels do not cover one another.
    for (const [i, a] of labels.entries()) for (const b of labels.slice(i + 1)) expect(a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y).toBe(true);
  });

  /**
   * 36 one-cell regions 1 cell apart in a 11 x 11 cell block (cells of 100 level-0 px, 16.7 px on
   * the figure): their rings merge into one. Ranks shuffled, so rank is not position.
   */
  const crowd = (): RankedRegion[] => {
    const out: RankedRegion[] = [];
    const ranks = Array.from({ length: 36 }, (_, i) => ((i * 17) % 36) + 1);
    for (let k = 0; k < 36; k++) {
      const r = 30 + 2 * Math.floor(k / 6);
      const c = 50 + 2 * (k % 6);
      out.push(square(ranks[k] as number, r, c, r, c, 100));
    }
    return out;
  };

  it('numbers every region of a crowd whose rings merge on its own, at a dot in it, with a leader when the number sits away', async () => {
    const regions = crowd();
    const { png, labels, layout, unnumbered } = await overlayFigure(input({ thumbnail: await hne(), regions }));
    const out = await decode(png);
    const scale = layout.image.width / W;
    const u = layout.unit;
    // Every rank is on the figure, each in a label of its own (the old figure had one: '1–36').
    expect(labels.map((l) => l.text)).toEqual(labels.map((l) => String(l.rank)));
    expect([...labels.map((l) => l.rank), ...unnumbered].sort((a, b) => a - b)).toEqual(Array.from({ length: 36 }, (_, i) => i + 1));
    for (let rank = 1; rank <= 10; rank++) expect(labels.some((l) => l.rank === rank)).toBe(true);
    expect(labels.length).toBeGreaterThanOrEqual(30);
    for (const l of labels) {
      const r = regions.find((g) => g.rank === l.rank) as RankedRegion;
      // The anchor is in its own region.
      const rx0 = layout.image.left + r.bbox[0] * scale;
      const ry0 = layout.image.top + r.bbox[1] * scale;
      expect(l.anchor.x).toBeGreaterThanOrEqual(rx0 - 1);
      expect(l.anchor.x).toBeLessThanOrEqual(rx0 + r.bbox[2] * scale + 1);
      expect(l.anchor.y).toBeGreaterThanOrEqual(ry0 - 1);
      expect(l.anchor.y).toBeLessThanOrEqual(ry0 + r.bbox[3] * scale + 1);
      // A number not on its anchor has a leader from the anchor to the number's box, and a dot there.
      const gap = Math.hypot(Math.max(0, l.x - l.anchor.x, l.anchor.x - l.x - l.width), Math.max(0, l.y - l.anchor.y, l.anchor.y - l.y - l.height));
      if (gap > 0) {
        expect(l.leader).not.toBeNull();
        if (l.leader === null) continue;
        expect([l.leader.x1, l.leader.y1]).toEqual([l.anchor.x, l.anchor.y]);
        expect(Math.hypot(l.leader.x2 - l.leader.x1, l.leader.y2 - l.leader.y1)).toBeCloseTo(gap, 3);
        expect(l.leader.x2 >= l.x - 0.5 && l.leader.x2 <= l.x + l.width + 0.5 && l.leader.y2 >= l.y - 0.5 && l.leader.y2 <= l.y + l.height + 0.5).toBe(true);
        expect(Math.min(...at(out, l.anchor.x, l.anchor.y))).toBeGreaterThan(200); // the white dot
      }
      // Near its region: no number is parked far away (over glass) even with a leader.
      expect(gap).toBeLessThan(u * 60);
      // It covers no other region's anchor.
      for (const m of labels) if (m !== l) expect(m.anchor.x > l.x && m.anchor.x < l.x + l.width && m.anchor.y > l.y && m.anchor.y < l.y + l.height).toBe(false);
    }
    // Numbers do not cover one another.
    for (const [i, a] of labels.entries()) for (const b of labels.slice(i + 1)) expect(a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y).toBe(true);
  });

  it('numbers the best ranks when it may number only some, and says which are not', async () => {
    const regions = crowd();
    const full = await overlayFigure(input({ regions }));
    const some = await overlayFigure(input({ regions }), { maxLabels: 10 });
    expect(some.labels.map((l) => l.rank).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(some.unnumbered).toEqual(Array.from({ length: 26 }, (_, i) => i + 11));
    // The legend has a line more for them (overlayLayout places the labels as the figure does).
    expect(full.unnumbered).toEqual([]);
    expect(some.layout.canvas.height).toBeGreaterThan(full.layout.canvas.height);
    expect(overlayLayout(input({ regions }), { maxLabels: 10 })).toEqual(some.layout);
  });

  it("marks a region at a point of its own, not at its box's middle (an L)", () => {
    // Cells (0..9, 0..1) and (8..9, 2..9) of 100 px: the box's middle (500, 500) is not on it.
    const l: RankedRegion = {
      ...square(1, 0, 0, 9, 9, 100),
      outline: [[[0, 0], [1000, 0], [1000, 1000], [800, 1000], [800, 200], [0, 200], [0, 0]]],
    };
    const a = regionAnchor(l, 0.5);
    const [x, y] = [a.x / 0.5, a.y / 0.5];
    expect((y >= 0 && y <= 200 && x >= 0 && x <= 1000) || (x >= 800 && x <= 1000 && y >= 0 && y <= 1000)).toBe(true);
    expect(a.radius).toBeGreaterThan(30);
    // A region smaller than a pixel: its middle.
    const dot = regionAnchor(square(2, 10, 10, 10, 10, 1), 0.01);
    expect(dot.x).toBeCloseTo(0.105, 3);
    expect(dot.y).toBeCloseTo(0.105, 3);
  });

  it('keeps its numbers short and its ticks readable', () => {
    expect(rankLabel([1])).toBe('1');
    expect(rankLabel([2, 1])).toBe('1, 2');
    expect(rankLabel([9, 1, 3, 4, 5])).toBe('1, 3–5, 9');
    expect(rankLabel([1, 3, 5, 7, 9, 11])).toBe('1, 3, 5 +3');
    expect(formatTick(0.30000000000000004, 0.1)).toBe('0.3');
    expect(formatTick(12, 2)).toBe('12');
    // Ticks never crowd: fewer of them on a narrow bar.
    expect(ticks(0, 7, 60, 15).values.length).toBeLessThan(ticks(0, 7, 1000, 15).values.length);
  });

  it('takes any file name as its title (markup, control characters, a long name)', async () => {
    const title = `a<b>&"c'\u0001\u001b[31m\ud800${'x'.repeat(300)}.svs`;
    const { layout } = await overlayFigure(input({ title, subtitle: 'm · \u0007' }));
    expect(layout.title.endsWith('…')).toBe(true);
  });

  it('draws the slide on grey when it could not be read', async () => {
    const out = await decode(await renderOverlay(input({ thumbnail: null })));
    expect(out.width).toBe(2000);
  });

  it('rejects inconsistent inputs and options', async () => {
    await expect(renderOverlay(input({ heatmap: { grid: new Float32Array(5), meta: meta(8, 12, 1000, W, H, 0, 1, 1) } }))).rejects.toThrow(/expected rows x cols/);
    await expect(renderOverlay(input({}), { longSide: 50 })).rejects.toThrow(/long side/);
    await expect(renderOverlay(input({}), { opacityHot: 2 })).rejects.toThrow(/opacityHot/);
    await expect(renderOverlay(input({}), { outline: 'cyan' })).rejects.toThrow(/outline/);
  });
});

describe('colormaps', () => {
  it('are 256-entry ramps from dark to light', () => {
    for (const name of COLORMAPS) {
      const lut = colormapLut(name);
      expect(lut.length).toBe(768);
      let previous = -1;
      for (let i = 0; i < 256; i++) {
        const luma = 0.299 * (lut[i * 3] as number) + 0.587 * (lut[i * 3 + 1] as number) + 0.114 * (lut[i * 3 + 2] as number);
        expect(luma).toBeGreaterThanOrEqual(previous - 0.5);
        previous = luma;
      }
    }
    expect([...colormapLut('inferno').subarray(0, 3)]).toEqual([0, 0, 4]);
    expect([...colormapLut('viridis').subarray(765)]).toEqual([253, 231, 37]);
  });

  it('normalise by [min, max] or [min, 2 x threshold], clamped, without dividing by zero', () => {
    expect(lutIndex(5, 0, 10)).toBe(128);
    expect(lutIndex(-3, 0, 10)).toBe(0);
    expect(lutIndex(99, 0, 10)).toBe(255);
    expect(lutIndex(4, 4, 4)).toBe(128);
    expect(colourRange('threshold', 1, 50, 6)).toEqual({ lo: 1, hi: 12 });
    expect(colourRange('threshold', 1, 50, Infinity)).toEqual({ lo: 1, hi: 50 });
    expect(colourRange('minmax', 1, 50, 6)).toEqual({ lo: 1, hi: 50 });
  });
});
