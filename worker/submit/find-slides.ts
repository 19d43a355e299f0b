/**
 * Expands files and folders into slide files: folders are scanned recursively for known slide
 * extensions (MIRAX's per-slide data folders are skipped; the .mrxs file stands for the slide),
 * following symlinks to slides and to folders.
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { SlideNotFoundError } from '../slide/errors.js';

export const SLIDE_EXTENSIONS = new Set(['.svs', '.tif', '.tiff', '.ndpi', '.mrxs', '.scn', '.bif', '.vms', '.vmu', '.svslide', '.btf']);

async function walk(dir: string, out: string[], seen: Set<string>): Promise<void> {
  // Symlinked folders are followed once each: a link back up the tree must not loop.
  const real = await realpath(dir).catch(() => dir);
  if (seen.has(real)) return;
  seen.add(real);
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  const mrxsStems = new Set(entries.filter((e) => e.isFile() && extname(e.name).toLowerCase() === '.mrxs').map((e) => e.name.slice(0, -5)));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    // A symlink counts as what it points to (labs link slides into case folders); a dangling
    // one with a slide's name is kept, so it fails with "no such file" instead of vanishing.
    const target = e.isSymbolicLink() ? await stat(p).catch(() => null) : e;
    const isSlideName = SLIDE_EXTENSIONS.has(extname(e.name).toLowerCase());
    if (target === null) {
      if (isSlideName) out.push(p);
    } else if (target.isDirectory()) {
      if (!mrxsStems.has(e.name)) await walk(p, out, seen);
    } else if (target.isFile() && isSlideName) {
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
    if (st.isDirectory()) await walk(abs, out, new Set());
    else out.push(abs);
  }
  return [...new Set(out)];
}
