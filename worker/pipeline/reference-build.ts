/**
 * `flashslide reference build`: embeds normal slides with the model (the same plan and embed
 * stages as an analysis, so their embeddings are cached and reused) and keeps a k-center coreset
 * of their tissue patches as a reference bank for `--score reference:<bank>`.
 *
 * Memory: from each slide at most `maxPatchesPerSlide` tissue patches are read (a seeded uniform
 * sample; all of them for smaller slides), streamed from the part files; nothing else of a slide
 * is held. The coreset is then chosen from the samples of all slides.
 */
import { buildReferenceBank, writeReferenceBank, type ReferenceBank } from '../score/reference-bank.js';
import type { PatchEmbeddings } from '../score/types.js';
import { sampleIndices, seededRng } from '../util/random.js';
import { describeAnalysis } from './analysis-spec.js';
import { embedSlide, type EmbeddedRunOptions } from './run-embedded.js';
import { gatherRows, tissueLayout } from './tissue-chunks.js';

export interface ReferenceBuildSampling {
  /** Patches read from one slide: 100k x 1024 dims x 4 bytes = 400 MB at most per slide held. */
  maxPatchesPerSlide: number;
  seed: number;
}

export const REFERENCE_BUILD_DEFAULTS: Readonly<ReferenceBuildSampling> = { maxPatchesPerSlide: 100_000, seed: 0x5a3d };

export interface ReferenceBuildOptions extends EmbeddedRunOptions, Partial<ReferenceBuildSampling> {
  /** Patches kept in the bank. */
  maxSize?: number | undefined;
}

export async function buildReferenceFromSlides(slides: readonly string[], out: string, options: ReferenceBuildOptions = {}): Promise<ReferenceBank> {
  const sampling: ReferenceBuildSampling = {
    maxPatchesPerSlide: options.maxPatchesPerSlide ?? REFERENCE_BUILD_DEFAULTS.maxPatchesPerSlide,
    seed: options.seed ?? REFERENCE_BUILD_DEFAULTS.seed,
  };
  if (!Number.isInteger(sampling.maxPatchesPerSlide) || sampling.maxPatchesPerSlide < 1) {
    throw new RangeError(`reference build: maxPatchesPerSlide must be a positive integer, got ${sampling.maxPatchesPerSlide}`);
  }
  const sets: PatchEmbeddings[] = [];
  let model = '';
  for (const [i, slide] of slides.entries()) {
    // Only the embeddings matter here; they are shared with every analysis of the slide, whatever its score.
    const spec = await describeAnalysis(slide, { ...options, scoreMethod: 'self' });
    model = spec.modelName;
    const { plan } = await embedSlide(spec, options);
    const layout = await tissueLayout(plan);
    const rows =
      layout.count > sampling.maxPatchesPerSlide
        ? sampleIndices(layout.count, sampling.maxPatchesPerSlide, seededRng(sampling.seed + i))
        : Int32Array.from({ length: layout.count }, (_, r) => r);
    sets.push({ count: rows.length, dim: layout.dim, data: await gatherRows(plan, layout, rows) });
  }
  const bank = buildReferenceBank(sets, { model, ...(options.maxSize === undefined ? {} : { maxSize: options.maxSize }) });
  await writeReferenceBank(out, bank);
  return bank;
}
