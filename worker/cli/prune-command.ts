/**
 * `flashslide prune`: frees the disk the patch embeddings take (gigabytes per slide) in work
 * folders not used for a while. Only their part files go; plans, tissue masks and overviews stay
 * (reports and the viewer read them), and every result stays as it is. A slide scored again with
 * another --score later recomputes its embeddings.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { EMBEDDINGS_FOLDER } from '../pipeline/analysis-spec.js';
import { PARTS_FOLDER, dropEmbeddings } from '../pipeline/embed-stage.js';
import { printable } from '../util/printable.js';
import { UsageError, numberFlag, parse, stringFlag } from './args.js';
import { helpRequested } from './pipeline-commands.js';

const USAGE = `usage: flashslide prune [--data DIR] [--older-than DAYS] [--dry-run]

Deletes the patch embeddings (the part files under <data>/embeddings/*/parts) of work folders
whose parts were last written more than DAYS days ago (default 30; 0: all). Results, plans and
tissue masks stay. --dry-run lists what would go.`;

const GIB = 1024 ** 3;

/** The newest modification time and the total size of a folder's files (one level). */
async function folderAge(dir: string): Promise<{ newestMs: number; bytes: number } | null> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let newestMs = 0;
  let bytes = 0;
  for (const n of names) {
    const s = await stat(join(dir, n));
    newestMs = Math.max(newestMs, s.mtimeMs);
    bytes += s.size;
  }
  return { newestMs, bytes };
}

export async function pruneCommand(args: string[]): Promise<number> {
  const p = parse(args, { 'data': { type: 'string' }, 'older-than': { type: 'string' }, 'dry-run': { type: 'boolean' }, 'help': { type: 'boolean', short: 'h' } });
  if (helpRequested(p, USAGE)) return 0;
  if (p.positionals.length > 0) throw new UsageError(`prune takes no positional arguments (got ${printable(p.positionals.join(' '))})`);
  const days = numberFlag(p.values, 'older-than') ?? 30;
  if (!(days >= 0)) throw new UsageError('--older-than must be a number of days >= 0');
  const root = join(resolve(stringFlag(p.values, 'data') ?? 'data'), EMBEDDINGS_FOLDER);
  const dry = Boolean(p.values['dry-run']);
  const cutoff = Date.now() - days * 24 * 3600 * 1000;
  let folders: string[];
  try {
    folders = (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    process.stdout.write(`no embeddings under ${printable(root)}: nothing to prune\n`);
    return 0;
  }
  let freed = 0;
  let pruned = 0;
  let kept = 0;
  for (const name of folders) {
    const work = join(root, name);
    const age = await folderAge(join(work, PARTS_FOLDER));
    if (age === null) continue;
    if (age.newestMs > cutoff) {
      kept++;
      continue;
    }
    const bytes = dry ? age.bytes : await dropEmbeddings(work);
    freed += bytes;
    pruned++;
    process.stdout.write(`${dry ? 'would prune' : 'pruned'} ${printable(name)}: ${(bytes / GIB).toFixed(2)} GiB, last written ${new Date(age.newestMs).toISOString().slice(0, 10)}\n`);
  }
  process.stdout.write(`${dry ? 'would free' : 'freed'} ${(freed / GIB).toFixed(2)} GiB in ${pruned} work folder${pruned === 1 ? '' : 's'}; ${kept} used within ${days} days kept\n`);
  return 0;
}
