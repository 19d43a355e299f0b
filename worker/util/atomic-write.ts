/**
 * Write-then-rename, so a reader (or a worker that restarts after a crash) sees either the old
 * file or the complete new one, never a half-written file.
 */
import { link, mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

/**
 * A fresh temp file name in `path`'s folder (created if missing): the same folder, so rename and
 * link never cross a filesystem boundary; hidden and ending in '.tmp', so a crashed writer's
 * leftover is never taken for a result.
 */
async function tempPathBeside(path: string): Promise<string> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  return join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

export interface AtomicWriteOptions {
  /**
   * Flush the data to the disk before the rename (default true), so that even a power loss
   * leaves the old file or the complete new one. False for caches that can be recomputed and
   * are checked when read (part files): a process crash still leaves no half-written file, and
   * the writes run at memory speed instead of the disk's.
   */
  durable?: boolean;
}

/** `data` as pieces is written in order, without first joining it into one buffer. */
export async function writeFileAtomic(path: string, data: string | Uint8Array | readonly Uint8Array[], options: AtomicWriteOptions = {}): Promise<void> {
  const durable = options.durable ?? true;
  const tmp = await tempPathBeside(path);
  try {
    if (typeof data === 'string' || data instanceof Uint8Array) await writeFile(tmp, data, { flush: durable });
    else await writeChunks(tmp, data, durable);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * writeFileAtomic for content produced as a stream (a PDF): `produce` writes into the temp file's
 * stream and resolves when it has written everything; the file is renamed into place only then.
 */
export async function writeStreamAtomic(path: string, produce: (out: Writable) => Promise<void>): Promise<void> {
  const tmp = await tempPathBeside(path);
  try {
    const out = createWriteStream(tmp, { flush: true });
    const closed = finished(out);
    try {
      await produce(out);
    } finally {
      out.end();
    }
    await closed;
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Like writeFileAtomic, but never replaces an existing file: returns false (and writes nothing)
 * when `path` already exists. For files that several workers may race to create and whose first
 * version must stay (a slide's plan: later ones would renumber its batches under running jobs).
 */
export async function writeFileAtomicIfAbsent(path: string, data: string | Uint8Array): Promise<boolean> {
  const tmp = await tempPathBeside(path);
  try {
    await writeFile(tmp, data, { flush: true });
    // link() fails with EEXIST instead of replacing, atomically, on local and network filesystems.
    await link(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await rm(tmp, { force: true });
  }
}

async function writeChunks(path: string, chunks: readonly Uint8Array[], durable: boolean): Promise<void> {
  const fh = await open(path, 'w');
  try {
    // writev may write less than asked (large totals): continue from where it stopped.
    let pending = chunks.filter((c) => c.length > 0);
    while (pending.length > 0) {
      let { bytesWritten } = await fh.writev(pending);
      const rest: Uint8Array[] = [];
      for (const c of pending) {
        if (bytesWritten >= c.length) bytesWritten -= c.length;
        else {
          rest.push(c.subarray(bytesWritten));
          bytesWritten = 0;
        }
      }
      pending = rest;
    }
    if (durable) await fh.sync();
  } finally {
    await fh.close();
  }
}
