/**
 * Whether an mpp a user gave (`--mpp`, `--fallback-mpp`) makes the slide a plausible size. Tissue
 * detection works on an overview at a fixed µm/px and regions are cut at the model's µm/px, so a
 * wrong mpp does not fail: it quietly finds too little tissue (the overview shrinks to a few
 * pixels) or cuts regions at the wrong scale. The slide's physical size is the one fact that
 * exposes it: tissue on a glass slide spans millimetres, and a glass slide is at most 75 mm long
 * (a 3 x 2 inch slide), so a scan much smaller or larger than that was given the wrong mpp.
 */

export const PLAUSIBLE_SLIDE_MM = { minLongSide: 1, maxLongSide: 80 } as const;

const HOW_TO_FIND = "check the scanner's magnification (about 0.25 µm/px at 40x, 0.5 at 20x)";

/**
 * A warning for a user-given mpp that makes the slide implausibly small or large, else null.
 * `flag` names the option the value came from, so the warning says what to change.
 */
export function implausibleMppWarning(width: number, height: number, mpp: number, flag: '--mpp' | '--fallback-mpp'): string | null {
  const wMm = (width * mpp) / 1000;
  const hMm = (height * mpp) / 1000;
  const long = Math.max(wMm, hMm);
  const size = `${wMm.toFixed(2)} x ${hMm.toFixed(2)} mm`;
  if (long < PLAUSIBLE_SLIDE_MM.minLongSide) {
    return `with ${flag} ${mpp} the slide measures ${size}, smaller than tissue on a glass slide usually is: if that mpp is wrong, tissue and regions are wrong too; ${HOW_TO_FIND}`;
  }
  if (long > PLAUSIBLE_SLIDE_MM.maxLongSide) {
    return `with ${flag} ${mpp} the slide measures ${size}, longer than a glass slide: that mpp is probably wrong; ${HOW_TO_FIND}`;
  }
  return null;
}
