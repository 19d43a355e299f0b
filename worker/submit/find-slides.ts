/**
 * Expands files and folders into slide files: folders are scanned recursively for known slide
 * extensions (MIRAX's per-slide data folders are skipped; the .mrxs file stands for the slide).
 */
import { readdir, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { SlideNotFoundError } from '../slide/errors.js';

export const SLIDE_EXTENSIONS = new Set(['.svs', '.tif', '.tiff', '.ndpi', '.mrxs', '.scn', '.bif', '.vms', '.vmu', '.svslide', '.btf']);

async function walk(dir: string, out: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  const mrxsStems = new Set(entries.filter((e) => e.isFile() && extname(e.name).toLowerCase() === '.mrxs').map((e) => e.name.slice(0, -5)));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (!mrxsStems.has(e.name)) await walk(p, out);
    } else if (e.isFile() && SLIDE_EXTENSIONS.has(extname(e.name).toLowerCase())) {
      out.push(p);
    }
  }
}

/** Files are taken as given (whatever their extension); folders contribute the slides inside. */
export async function findSlides(inputs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const input of inputs) {
    const abs = resolve(input);
    const st = await stat(abs).catch(() => null);
    if (st === null) throw new SlideNotFoundError(input, 'no such file or folder');
    if (st.isDirectory()) await walk(abs, out);
    else out.push(abs);
  }
  return [...new Set(out)];
}
