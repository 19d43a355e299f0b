/**
 * The header of a reference bank or head file (safetensors): its tensors' names, dtypes, shapes
 * and its metadata, read without its data. The readers check a file's header first, so that a
 * wrong file (a model's weights given to --score, gigabytes) is refused from its header alone,
 * and the CLI checks a score file before any slide is read (check-analysis.ts).
 */
import { SafetensorsError, SafetensorsReader, type TensorInfo } from '../infer/safetensors.js';
import { ScoreFileError } from './errors.js';

export interface ScoreFileHeader {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
}

/** `what`: "reference bank" or "head", for the message when the file is not safetensors at all. */
export async function readScoreFileHeader(path: string, what: string): Promise<ScoreFileHeader> {
  let reader: SafetensorsReader;
  try {
    reader = await SafetensorsReader.open(path);
  } catch (err) {
    if (err instanceof SafetensorsError) throw new ScoreFileError(path, `cannot read the ${what}: ${err.message}`, err);
    throw err;
  }
  await reader.close();
  return { tensors: reader.tensors, metadata: reader.metadata };
}

/**
 * For a message about a file that is not the bank or head it was given as: "; it holds ViT model
 * weights, not a score file" when its tensors are a model's (e.g. --model's file given to --score).
 */
export function modelWeightsHint(tensorNames: Iterable<string>): string {
  for (const name of tensorNames) if (name === 'patch_embed.proj.weight' || /^blocks\.\d+\./.test(name)) return '; it holds ViT model weights, not a score file';
  return '';
}
