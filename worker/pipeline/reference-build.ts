/**
 * `flashslide reference build`: embeds normal slides with the model (the same plan and embed
 * stages as an analysis, so their embeddings are cached and reused) and keeps a k-center coreset
 * of their tissue patches as a reference bank for `--score reference:<bank>`.
 *
 * Memory: from each slide at most `maxPatchesPerSlide` tissue patches are read (a seeded uniform
 * sample; all of them for smaller slides), streamed from the part files; nothing else of a slide
 * is held. A tenth of each slide's patches (at most 5000 in all) is held out; the coreset is
 * chosen from the rest of all slides, and the held-out patches' distances to it set the bank's
 * threshold (reference-calibration.ts).
 */
import { buildReferenceBank, writeReferenceBank, type ReferenceBank } from '../score/reference-bank.js';
import { calibrateReferenceBank } from '../score/reference-calibration.js';
import { nearestNeighbourDevice } from '../score/native-nearest-neighbour.js';
import type { PatchEmbeddings } from '../score/types.js';
import { sampleIndices, seededRng } from '../util/random.js';
import { describeAnalysis } from './analysis-spec.js';
import { embedSlide, type EmbeddedRunOptions } from './run-embedded.js';
import { gatherRows, tissueLayout } from './tissue-chunks.js';

export interface ReferenceBuildSampling {
  /** Patches read from one slide: 100k x 1024 dims x 4 bytes = 400 MB at most per slide held. */
  maxPatchesPerSlide: number;
  seed: number;
  /** Fraction of each slide's patches held out of the bank to calibrate its threshold. */
  heldOutFraction: number;
  /** Held-out patches in all, at most. */
  maxHeldOut: number;
  /** Quantile of the held-out distances that becomes the threshold. */
  thresholdQuantile: number;
}

export const REFERENCE_BUILD_DEFAULTS: Readonly<ReferenceBuildSampling> = { maxPatchesPerSlide: 100_000, seed: 0x5a3d, heldOutFraction: 0.1, maxHeldOut: 5000, thresholdQuantile: 0.99 };

export interface ReferenceBuildOptions extends EmbeddedRunOptions, Partial<ReferenceBuildSampling> {
  /** Patches kept in the bank. */
  maxSize?: number | undefined;
}

export async function buildReferenceFromSlides(slides: readonly string[], out: string, options: ReferenceBuildOptions = {}): Promise<ReferenceBank> {
  const sampling: ReferenceBuildSampling = { ...REFERENCE_BUILD_DEFAULTS };
  for (const key of ['maxPatchesPerSlide', 'seed', 'heldOutFraction', 'maxHeldOut', 'thresholdQuantile'] as const) {
    const v = options[key];
    if (v !== undefined) sampling[key] = v;
  }
  if (!Number.isInteger(sampling.maxPatchesPerSlide) || sampling.maxPatchesPerSlide < 1) {
    throw new RangeError(`reference build: maxPatchesPerSlide must be a positive integer, got ${sampling.maxPatchesPerSlide}`);
  }
  const sets: PatchEmbeddings[] = [];
  const heldOut: PatchEmbeddings[] = [];
  const heldOutPerSlide = Math.max(1, Math.floor(sampling.maxHeldOut / Math.max(1, slides.length)));
  let model = '';
  let modelFingerprint = '';
  for (const [i, slide] of slides.entries()) {
    // Only the embeddings matter here; they are shared with every analysis of the slide, whatever its score.
    const spec = await describeAnalysis(slide, { ...options, scoreMethod: 'self' });
    model = spec.modelName;
    modelFingerprint = spec.modelFingerprint;
    const { plan } = await embedSlide(spec, options);
    const layout = await tissueLayout(plan);
    const rows =
      layout.count > sampling.maxPatchesPerSlide
        ? sampleIndices(layout.count, sampling.maxPatchesPerSlide, seededRng(sampling.seed + i))
        : Int32Array.from({ length: layout.count }, (_, r) => r);
    // Held out: a seeded sample of the slide's patches, never offered to the coreset.
    const held = sampleIndices(rows.length, Math.min(heldOutPerSlide, Math.floor(rows.length * sampling.heldOutFraction)), seededRng(sampling.seed + 7919 * (i + 1)));
    const isHeld = new Uint8Array(rows.length);
    for (const h of held) isHeld[h] = 1;
    const bankRows = rows.filter((_, k) => isHeld[k] === 0);
    const heldRows = rows.filter((_, k) => isHeld[k] === 1);
    sets.push({ count: bankRows.length, dim: layout.dim, data: await gatherRows(plan, layout, bankRows) });
    if (heldRows.length > 0) heldOut.push({ count: heldRows.length, dim: layout.dim, data: await gatherRows(plan, layout, heldRows) });
  }
  const bank = buildReferenceBank(sets, { model, modelFingerprint, ...(options.maxSize === undefined ? {} : { maxSize: options.maxSize }) });
  const calibration = concatEmbeddings(heldOut, bank.dim);
  const device = nearestNeighbourDevice(options.device ?? 'auto');
  const calibrated = await calibrateReferenceBank(bank, calibration, { quantile: sampling.thresholdQuantile, device });
  await writeReferenceBank(out, calibrated);
  return calibrated;
}

function concatEmbeddings(sets: readonly PatchEmbeddings[], dim: number): PatchEmbeddings {
  const count = sets.reduce((n, s) => n + s.count, 0);
  const data = new Float32Array(count * dim);
  let at = 0;
  for (const s of sets) {
    data.set(s.data.subarray(0, s.count * dim), at);
    at += s.count * dim;
  }
  return { count, dim, data };
}
