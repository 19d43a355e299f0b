/**
 * `flashslide reference build`: embeds normal slides with the model (the same plan and embed
 * stages as an analysis, so their embeddings are cached and reused) and keeps a k-center coreset
 * of their tissue patches as a reference bank for `--score reference:<bank>`.
 */
import { buildReferenceBank, writeReferenceBank, type ReferenceBank } from '../score/reference-bank.js';
import type { PatchEmbeddings } from '../score/types.js';
import { describeAnalysis } from './analysis-spec.js';
import { gatherTissueEmbeddings } from './aggregate-stage.js';
import { embedSlide, type EmbeddedRunOptions } from './run-embedded.js';

export interface ReferenceBuildOptions extends EmbeddedRunOptions {
  /** Patches kept in the bank. */
  maxSize?: number | undefined;
}

export async function buildReferenceFromSlides(slides: readonly string[], out: string, options: ReferenceBuildOptions = {}): Promise<ReferenceBank> {
  const sets: PatchEmbeddings[] = [];
  let model = '';
  for (const slide of slides) {
    // The bank depends only on the embeddings, whatever score the analysis id would carry.
    const spec = await describeAnalysis(slide, { ...options, scoreMethod: 'self' });
    model = spec.modelName;
    const { plan } = await embedSlide(spec, options);
    const g = await gatherTissueEmbeddings(plan);
    sets.push({ count: g.count, dim: g.dim, data: g.data });
  }
  const bank = buildReferenceBank(sets, { model, ...(options.maxSize === undefined ? {} : { maxSize: options.maxSize }) });
  await writeReferenceBank(out, bank);
  return bank;
}
