import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { BROKEN, CMU, KIDNEY, NDPI, ROOT, tempDir } from '../helpers.js';

const BIN = join(ROOT, 'bin', 'flashslide.js');

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, FLASHSLIDE_DEBUG: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface InspectJson {
  width: number;
  height: number;
  levels: { width: number; height: number; downsample: number }[];
  mpp: number | null;
  mppSource: string | null;
  vendor: string;
  backend: string;
  tissueFraction: number;
  regionCount: number | null;
  tissueMaskPath: string;
}

describe('flashslide inspect (the built CLI)', () => {
  it('--json has the documented fields and writes the tissue mask PNG', async () => {
    const out = tempDir();
    const r = cli(['inspect', CMU, '--json', '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as InspectJson;
    expect(j).toMatchObject({ width: 2220, height: 2967, mpp: 0.499, mppSource: 'vendor', vendor: 'aperio', backend: 'sharp' });
    expect(j.levels).toEqual([{ width: 2220, height: 2967, downsample: 1 }]);
    expect(j.tissueFraction).toBeGreaterThan(0.3);
    expect(j.regionCount).toBe(6); // 1024 px regions: 3x3 grid less the empty top-left/left cells
    expect(j.tissueMaskPath).toBe(join(out, 'CMU-1-Small-Region.tissue.png'));
    const meta = await sharp(j.tissueMaskPath).metadata();
    expect(meta.format).toBe('png');
  });

  it('human output names format, mpp, tissue and regions', () => {
    const r = cli(['inspect', NDPI, '--out', tempDir()]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/hamamatsu via openslide/);
    expect(r.stdout).toMatch(/0\.2282 x 0\.2282 µm\/px \(vendor\), 40x objective/);
    expect(r.stdout).toMatch(/regions +\d+ of \dx\d grid: 1024 px at 0\.456 µm\/px \(level 1, native\)/);
  });

  it('a slide without mpp: metadata and tissue, regions only with --mpp', () => {
    const out = tempDir();
    const plain = JSON.parse(cli(['inspect', KIDNEY, '--json', '--out', out]).stdout) as InspectJson;
    expect(plain.mpp).toBeNull();
    expect(plain.mppSource).toBeNull();
    expect(plain.regionCount).toBeNull();
    // The fragment is ~120 px long: at 2 µm/px it is a 240 µm piece, well above the debris size.
    const given = JSON.parse(cli(['inspect', KIDNEY, '--json', '--mpp', '2', '--target-mpp', '2', '--region-size', '224', '--out', out]).stdout) as InspectJson;
    expect(given.mpp).toBe(2);
    expect(given.mppSource).toBe('override');
    expect(given.regionCount).toBeGreaterThan(0);
  });

  it('unreadable files exit non-zero with one clear line and no stack trace', () => {
    for (const [args, pattern] of [
      [['inspect', BROKEN], /broken\.svs: not a slide format flashslide reads/],
      [['inspect', '/no/such/slide.svs'], /no such file/],
      [['inspect', CMU, '--region-size', '1000'], /multiple of the patch size/],
      [['inspect', CMU, '--mpp', 'abc'], /--mpp expects a number/],
      [['inspect'], /exactly one slide path/],
      [['frobnicate'], /unknown command/],
    ] as const) {
      const r = cli([...args, '--out', tempDir()].filter((a) => !(args[0] === 'frobnicate' && a.startsWith('--'))));
      expect(r.code, r.stderr).not.toBe(0);
      const first = r.stderr.split('\n')[0] ?? '';
      expect(first).toMatch(/^flashslide: /);
      expect(first).toMatch(pattern);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stdout).toBe('');
    }
    expect(existsSync(join(ROOT, 'broken.tissue.png'))).toBe(false);
    // --out naming a file: one usage line (it was an internal error: EEXIST from mkdir).
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, 'x');
    const r = cli(['inspect', CMU, '--out', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--out .*a-file: cannot be used as the folder for the tissue mask \(EEXIST\)/);
  });
});
