/**
 * Content fingerprints for slides and model weights, so that a job's identity follows the bytes,
 * not the file name: the same slide submitted twice (or from another path) is one job, and a
 * changed file is a new one.
 *
 * Slides are gigabytes; hashing all of them would cost more than planning them. A fingerprint is
 * the SHA-256 of the size plus sampled chunks (the first and last 4 MiB, where TIFF/vendor headers
 * and directories live, and 16 chunks of 256 KiB spread evenly). Files up to 64 MiB are hashed whole.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

const WHOLE_LIMIT = 64 << 20;
const EDGE = 4 << 20;
const SAMPLES = 16;
const SAMPLE = 256 << 10;

export async function fingerprintFile(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const hash = createHash('sha256');
    hash.update(`size:${size};`);
    const readAt = async (offset: number, length: number): Promise<void> => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      hash.update(buf.subarray(0, bytesRead));
    };
    if (size <= WHOLE_LIMIT) {
      for (let o = 0; o < size; o += 8 << 20) await readAt(o, Math.min(8 << 20, size - o));
    } else {
      await readAt(0, EDGE);
      for (let i = 0; i < SAMPLES; i++) await readAt(Math.floor(((size - SAMPLE) * (i + 1)) / (SAMPLES + 1)), SAMPLE);
      await readAt(size - EDGE, EDGE);
    }
    return hash.digest('hex');
  } finally {
    await fh.close();
  }
}

/** A short stable id for any JSON-serialisable description (keys sorted). */
export function stableHash(value: unknown): string {
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.keys(v as Record<string, unknown>).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
    }
    return v;
  };
  return createHash('sha256').update(JSON.stringify(canonical(value))).digest('hex');
}
