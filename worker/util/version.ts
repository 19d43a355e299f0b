/** flashslide's version, from package.json, recorded in every result for reproducibility. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../native/addon.js';

export const FLASHSLIDE_VERSION: string = (JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
