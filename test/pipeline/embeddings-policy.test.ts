/**
 * Embeddings on disk by choice (issue 14): `--embeddings drop` deletes a slide's part files once
 * its result is stored, `flashslide prune` those of work folders unused for a while; results,
 * plans and tissue masks stay, and a later re-scoring recomputes what was dropped.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, rmSync, truncateSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_MODEL_SPEC } from '../../worker/infer/demo-model.js';
import { writeSafetensors } from '../../worker/infer/safetensors.js';
import { CMU, TINY, cli, tempDir } from '../helpers.js';

const flags = (data: string): string[] => ['--data', data, '--region-size', '512', '--device', 'cpu'];

interface Summary {
  embeddings: { dir: string; batchesComputed: number; dropped?: boolean };
}
const summaryOf = (resultDir: string): Summary => JSON.parse(readFileSync(join(resultDir, 'summary.json'), 'utf8')) as Summary;

function analyzed(args: string[]): { resultDir: string; analysisId: string } {
  const r = cli(['analyze', ...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  const [o] = JSON.parse(r.stdout) as { resultDir: string; analysisId: string }[];
  return o!;
}

describe('embeddings on disk by choice', () => {
  it('--embeddings drop keeps the result and the plan, deletes the parts, and changes no id', async () => {
    const data = tempDir();
    const dropped = analyzed([CMU, ...flags(data), '--embeddings', 'drop']);
    const s = summaryOf(dropped.resultDir);
    expect(s.embeddings.dropped).toBe(true);
    expect(existsSync(join(s.embeddings.dir, 'parts'))).toBe(false);
    expect(existsSync(join(s.embeddings.dir, 'plan.json'))).toBe(true);
    expect(existsSync(join(dropped.resultDir, 'heatmap.npy'))).toBe(true);
    // The same analysis with keep is the same result (cached), not a new id.
    const again = cli(['analyze', CMU, ...flags(data)]);
    expect(again.stdout).toMatch(/^CACHED /m);
    // Another score method needs the embeddings: computed again.
    const probe = join(tempDir(), 'probe.safetensors');
    const dim = DEMO_MODEL_SPEC.embedDim;
    await writeSafetensors(probe, { weight: { dtype: 'F32', shape: [2, dim], data: Float32Array.from({ length: 2 * dim }, (_, i) => Math.sin(i)) }, bias: { dtype: 'F32', shape: [2], data: Float32Array.from([0, 0]) } }, { classes: '["normal","tumor"]' });
    const probed = analyzed([CMU, ...flags(data), '--score', `head:${probe}`]);
    expect(summaryOf(probed.resultDir).embeddings.batchesComputed).toBeGreaterThan(0);
    expect(existsSync(join(s.embeddings.dir, 'parts'))).toBe(true);
  }, 120_000);

  it('a part file cut short (parts are not flushed to the disk: a power loss) fails its slide with the way out', () => {
    const data = tempDir();
    const first = analyzed([CMU, ...flags(data)]);
    const parts = join(summaryOf(first.resultDir).embeddings.dir, 'parts');
    const part = join(parts, readdirSync(parts)[0]!);
    truncateSync(part, 1000);
    rmSync(join(first.resultDir, 'summary.json'));
    const r = cli(['analyze', CMU, ...flags(data)]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^FAILED +.*CMU-1-Small-Region\.svs: .*batch-00000\.safetensors: cannot read this part file \(truncated.*\); delete the slide's work folder/m);
    expect(r.stderr).not.toMatch(/internal error/);
  }, 120_000);

  it('prune deletes the parts of work folders unused for the given days, and only those', () => {
    const data = tempDir();
    const old = analyzed([CMU, ...flags(data)]);
    const fresh = analyzed([TINY, ...flags(data)]);
    const oldParts = join(summaryOf(old.resultDir).embeddings.dir, 'parts');
    expect(readdirSync(oldParts).length).toBeGreaterThan(0);
    const longAgo = new Date(Date.now() - 45 * 24 * 3600 * 1000);
    for (const f of readdirSync(oldParts)) utimesSync(join(oldParts, f), longAgo, longAgo);

    const dry = cli(['prune', '--data', data, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^would prune CMU-1-Small-Region-\w+: \d+\.\d\d GiB, last written \d{4}-\d\d-\d\d$/m);
    expect(existsSync(oldParts)).toBe(true);

    const r = cli(['prune', '--data', data]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^freed \d+\.\d\d GiB in 1 work folder; \d+ used within 30 days kept$/m);
    expect(existsSync(oldParts)).toBe(false);
    expect(existsSync(join(old.resultDir, 'summary.json'))).toBe(true);
    expect(existsSync(join(summaryOf(old.resultDir).embeddings.dir, 'plan.json'))).toBe(true);
    expect(fresh.resultDir).not.toBe(old.resultDir);
    expect(cli(['prune', '--data', data, '--older-than', '-1']).code).toBe(2);
  }, 120_000);
});
