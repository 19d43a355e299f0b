/**
 * Binary morphology on 0/1 masks with square structuring elements, done as separable running
 * max/min passes so the cost is O(pixels) whatever the radius.
 */

function pass1d(src: Uint8Array, dst: Uint8Array, w: number, h: number, r: number, horizontal: boolean, dilate: boolean): void {
  const len = horizontal ? w : h;
  const lines = horizontal ? h : w;
  const stride = horizontal ? 1 : w;
  const lineStep = horizontal ? w : 1;
  const hit = dilate ? 1 : 0;
  for (let line = 0; line < lines; line++) {
    const base = line * lineStep;
    // Count of `hit` pixels inside the window [i-r, i+r], clipped at the borders. Out-of-image
    // pixels count as background for dilation and as foreground for erosion, so erosion does not
    // eat tissue that touches the slide edge.
    let count = 0;
    for (let k = 0; k <= Math.min(r, len - 1); k++) if (src[base + k * stride] === hit) count++;
    for (let i = 0; i < len; i++) {
      // Dilation: any foreground in the window. Erosion: no background in the window.
      dst[base + i * stride] = dilate ? (count > 0 ? 1 : 0) : count > 0 ? 0 : 1;
      const leave = i - r;
      const enter = i + r + 1;
      if (leave >= 0 && src[base + leave * stride] === hit) count--;
      if (enter < len && src[base + enter * stride] === hit) count++;
    }
  }
}

function apply(mask: Uint8Array, w: number, h: number, r: number, dilate: boolean): Uint8Array {
  if (r <= 0) return mask.slice();
  const tmp = new Uint8Array(mask.length);
  const out = new Uint8Array(mask.length);
  pass1d(mask, tmp, w, h, r, true, dilate);
  pass1d(tmp, out, w, h, r, false, dilate);
  return out;
}

export const dilate = (m: Uint8Array, w: number, h: number, r: number): Uint8Array => apply(m, w, h, r, true);
export const erode = (m: Uint8Array, w: number, h: number, r: number): Uint8Array => apply(m, w, h, r, false);
/** Closing fills gaps narrower than 2r+1 (between nuclei, in loose stroma). */
export const close = (m: Uint8Array, w: number, h: number, r: number): Uint8Array => erode(dilate(m, w, h, r), w, h, r);
/** Opening removes specks narrower than 2r+1 (dust, debris). */
export const open = (m: Uint8Array, w: number, h: number, r: number): Uint8Array => dilate(erode(m, w, h, r), w, h, r);

/** Clears 8-connected components smaller than `minArea` pixels. Returns the number kept. */
export function removeSmallComponents(mask: Uint8Array, w: number, h: number, minArea: number): number {
  const label = new Int32Array(mask.length);
  const stack = new Int32Array(mask.length);
  let kept = 0;
  let next = 0;
  for (let start = 0; start < mask.length; start++) {
    if (mask[start] !== 1 || label[start] !== 0) continue;
    next++;
    let top = 0;
    let area = 0;
    stack[top++] = start;
    label[start] = next;
    const members: number[] = [];
    while (top > 0) {
      const p = stack[--top] as number;
      members.push(p);
      area++;
      const x = p % w;
      const y = (p - x) / w;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= w) continue;
          const q = yy * w + xx;
          if (mask[q] === 1 && label[q] === 0) {
            label[q] = next;
            stack[top++] = q;
          }
        }
      }
    }
    if (area < minArea) {
      for (const p of members) mask[p] = 0;
    } else {
      kept++;
    }
  }
  return kept;
}
