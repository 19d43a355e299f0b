/** Reading the result folder's small JSON files: absent is null, unparsable is a CorruptResultError. */
import { readFile } from 'node:fs/promises';
import { CorruptResultError } from './errors.js';

export async function readJsonFile<T>(path: string): Promise<T | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new CorruptResultError(path, `not valid JSON (${(err as Error).message})`, err);
  }
}
