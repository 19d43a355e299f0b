/**
 * Mistakes a newcomer makes, caught before any work (issue 12): run-wide option errors, model
 * files, devices, a worker that cannot work, status without Redis, the queue's own record of
 * where a slide's result goes, the no-mpp hint, Ctrl-C, progress lines, inspect's output folder.
 * The built CLI in real processes, real slides, a real Redis for the queue parts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describeAnalysis } from '../../worker/pipeline/analysis-spec.js';
import { progressBar } from '../../worker/pipeline/progress.js';
import { MissingMppError } from '../../worker/slide/errors.js';
import { DEMO_MODEL_SPEC } from '../../worker/infer/demo-model.js';
import { availableDevices, resolveModelFiles } from '../../worker/infer/vit-engine.js';
import { startRedis, type RedisHandle } from '../redis-server.js';
import { BIN, CMU, KIDNEY, ROOT, SLIDES, TINY, cli, cliEnv, tempDir } from '../helpers.js';

describe('run-wide option errors: once, before any slide is read, exit 2', () => {
  const cases: [string, string[], RegExp][] = [
    ['a region size below the minimum', ['--region-size', '100'], /--region-size: region size 100 must be in 224\.\.4096/],
    ['a region size that is not a multiple of the patch', ['--region-size', '1000'], /--region-size: .*multiple of the patch size 16/],
    ['an overlap that is not a multiple of the patch', ['--overlap', '8'], /--overlap: overlap 8 must be a multiple/],
    ['a negative target resolution', ['--target-mpp=-1'], /--target-mpp: target mpp -1/],
    ['a zero --mpp', ['--mpp', '0'], /--mpp 0: expected microns per pixel/],
    ['a reference bank that does not exist', ['--score', 'reference:/nonexistent/bank.safetensors'], /--score reference:\/nonexistent\/bank\.safetensors: no such file; expected a reference bank/],
    ['an unknown score method', ['--score', 'knn'], /--score "knn": expected self, reference:/],
    ['a weights file that does not exist', ['--model', '/nonexistent/uni.safetensors'], /--model \/nonexistent\/uni\.safetensors: no such weights file/],
    ['a config passed as the model', ['--model', join(ROOT, 'package.json')], /that is a config; --model takes the \.safetensors weights/],
  ];
  if (!availableDevices().includes('cuda')) cases.push(['--device cuda on a build without CUDA', ['--device', 'cuda'], /--device cuda: this build has no CUDA backend/]);

  for (const [what, flags, message] of cases) {
    it(`analyze: ${what}`, () => {
      const data = join(tempDir(), 'data');
      const r = cli(['analyze', CMU, TINY, '--data', data, ...flags]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).not.toMatch(/FAILED|DONE/);
      // Nothing started: no result folder, no failure.json, no work folder.
      expect(existsSync(data) ? readdirSync(data) : []).toEqual([]);
    });
  }

  it('weights without a config, and a config whose weights are missing, are named', async () => {
    await resolveModelFiles('demo'); // written on first use
    const dir = tempDir();
    const weights = join(dir, 'model.safetensors');
    copyFileSync(join(ROOT, 'models', `${DEMO_MODEL_SPEC.name}.safetensors`), weights);
    const noConfig = cli(['analyze', CMU, '--data', join(dir, 'data'), '--model', weights]);
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toMatch(/model\.json: no model config; write one beside the weights/);
    const noWeights = cli(['analyze', CMU, '--data', join(dir, 'data'), '--model', join(dir, 'other.safetensors'), '--config', join(ROOT, 'models', `${DEMO_MODEL_SPEC.name}.json`)]);
    expect(noWeights.code).toBe(2);
    expect(noWeights.stderr).toMatch(/other\.safetensors: no such weights file/);
    expect(noWeights.stderr).not.toMatch(/internal error|ENOENT/);
  });

  it('submit and reference build check the same options before touching the queue or a slide', () => {
    const sub = cli(['submit', CMU, '--region-size', '1000', '--redis', 'redis://127.0.0.1:1']);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toMatch(/--region-size/);
    const ref = cli(['reference', 'build', CMU, '-o', join(tempDir(), 'bank.safetensors'), '--overlap', '8']);
    expect(ref.code).toBe(2);
    expect(ref.stderr).toMatch(/--overlap/);
  });
});

describe('score files checked before any work: exit 2, one line naming the file', () => {
  const demoWeights = join(ROOT, 'models', `${DEMO_MODEL_SPEC.name}.safetensors`);
  const timmModel = join(ROOT, 'test', 'fixtures', 'timm', 'uni_like_p16.safetensors');
  beforeAll(async () => {
    await resolveModelFiles('demo'); // written on first use
  });

  /** `analyze` of two slides: refused within seconds, one line, nothing analysed or left behind. */
  function refusedBeforeAnyWork(flags: string[]): string {
    const data = join(tempDir(), 'data');
    const started = Date.now();
    const r = cli(['analyze', CMU, TINY, '--data', data, '--device', 'cpu', ...flags]);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.stdout).not.toMatch(/FAILED|DONE/);
    expect(existsSync(data) ? readdirSync(data) : []).toEqual([]);
    return r.stderr;
  }

  it('head:<a model\'s weights> (not a linear head) with two slides: exit 2 at once, not an embedded slide and a hang', () => {
    const stderr = refusedBeforeAnyWork(['--score', `head:${demoWeights}`]);
    expect(stderr).toContain(`--score head:${demoWeights}: not a linear head`);
    expect(stderr).toMatch(/it holds ViT model weights.*tensors "weight" \[C, 192\] and "bias" \[C\]/);
    const sub = cli(['submit', CMU, '--score', `head:${demoWeights}`, '--redis', 'redis://127.0.0.1:1']);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toContain(`--score head:${demoWeights}: not a linear head`);
  });

  it('a reference bank built with another model (same dim) is refused before any work, with the command that builds the right one', () => {
    const dir = tempDir();
    const bank = join(dir, 'uni-bank.safetensors');
    const built = cli(['reference', 'build', CMU, '-o', bank, '--model', timmModel, '--region-size', '224', '--device', 'cpu', '--data', join(dir, 'ref-data')]);
    expect(built.code, built.stderr).toBe(0);
    expect(built.stdout).toMatch(/model uni_like_p16, dim 192/);
    const stderr = refusedBeforeAnyWork(['--score', `reference:${bank}`]);
    expect(stderr).toContain(`--score reference:${bank}: bank was built with model uni_like_p16, this is model ${DEMO_MODEL_SPEC.name}`);
    expect(stderr).toMatch(/rebuild it for this model with `flashslide reference build <normal slides> -o <bank\.safetensors> --model demo`/);
    const sub = cli(['submit', CMU, '--score', `reference:${bank}`, '--redis', 'redis://127.0.0.1:1']);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toMatch(/bank was built with model uni_like_p16/);
    // Other weights under the bank's model name: told apart by the fingerprint the bank records.
    const impostor = join(dir, 'uni_like_p16.safetensors');
    copyFileSync(join(ROOT, 'test', 'fixtures', 'timm', 'uni_like_p16_square.safetensors'), impostor);
    copyFileSync(join(ROOT, 'test', 'fixtures', 'timm', 'uni_like_p16_square.json'), join(dir, 'uni_like_p16.json'));
    expect(refusedBeforeAnyWork(['--score', `reference:${bank}`, '--model', impostor])).toMatch(/bank was built with other weights named uni_like_p16 \(fingerprint [0-9a-f]{12}, these are [0-9a-f]{12}\)/);
  });

  it('reference:<a model\'s weights> says it is not a reference bank (not "built before banks carried one")', () => {
    const stderr = refusedBeforeAnyWork(['--score', `reference:${demoWeights}`]);
    expect(stderr).toContain(`--score reference:${demoWeights}: not a flashslide reference bank (no tensor "bank"; it holds ViT model weights, not a score file)`);
    expect(stderr).toMatch(/build one with `flashslide reference build <normal slides> -o <bank\.safetensors> --model demo`/);
    expect(stderr).not.toMatch(/built before banks carried one/);
  });

  it('a run-aborting error mid-run ends a run of two slides at once: the other slide\'s scoring thread is ended, nothing keeps the process alive', async () => {
    // A head replaced during the run (the CLI checked it before): slide 1's scoring refuses the
    // file it finds, slide 2's finds a good one and waits for its batches. analyzeEmbedded must
    // stop the slide in the engine, end every scoring thread and reject, so that the process
    // ends by itself (it used to wait forever on slide 2's scoring thread after the error).
    const { writeSafetensors } = await import('../../worker/infer/safetensors.js');
    const dir = tempDir();
    const head = join(dir, 'head.safetensors');
    const good = join(dir, 'good-head.safetensors');
    copyFileSync(demoWeights, head);
    await writeSafetensors(good, { weight: { dtype: 'F32', shape: [1, 192], data: new Float32Array(192) }, bias: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }, { classes: '["tumor"]' });
    const dist = (path: string): string => JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'worker', path)).href);
    const script = `
      import { copyFileSync } from 'node:fs';
      const { analyzeEmbedded } = await import(${dist('pipeline/run-embedded.js')});
      const { ScoreFileError } = await import(${dist('score/errors.js')});
      let replaced = false;
      // Once the first slide is embedded (its scoring has read the bad head), the good head.
      const onProgress = (p) => {
        if (replaced || p.stage !== 'embed' || p.regionsDone < p.regionsTotal) return;
        replaced = true;
        copyFileSync(${JSON.stringify(good)}, ${JSON.stringify(head)});
      };
      try {
        await analyzeEmbedded(${JSON.stringify([CMU, TINY])}, { dataDir: ${JSON.stringify(join(dir, 'data'))}, device: 'cpu', scoreMethod: ${JSON.stringify(`head:${head}`)}, onProgress });
        console.log('finished without the error');
      } catch (err) {
        console.log(\`\${err instanceof ScoreFileError ? 'typed' : 'untyped'} \${err.name}: \${err.message}\`);
        process.exitCode = 7;
      }`;
    const file = join(dir, 'two-slides.mjs'); // a file, not -e: the scoring threads inherit the flags
    writeFileSync(file, script);
    const started = Date.now();
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 50_000, env: cliEnv() });
    expect(r.status, `${r.stdout}${r.stderr}${r.signal ?? ''}`).toBe(7); // ended by itself, not killed at the timeout
    expect(Date.now() - started).toBeLessThan(50_000);
    expect(r.stdout).toMatch(/^typed ScoreFileError: .*head\.safetensors: not a linear head/m);
  });
});

describe('workers that cannot work refuse to start', () => {
  it.skipIf(availableDevices().includes('cuda'))('worker --device cuda on a build without CUDA: exit 2 before connecting to any queue', () => {
    const r = cli(['worker', '--device', 'cuda', '--slides', SLIDES, '--redis', 'redis://127.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--device cuda: this build has no CUDA backend/);
  });

  it('a worker whose build has no engine (the addon not built) refuses to start instead of failing every job it takes', () => {
    // The checkout's CLI without native/build: what a worker sees after a failed or skipped build.
    const root = tempDir();
    for (const d of ['bin', 'dist']) cpSync(join(ROOT, d), join(root, d), { recursive: true });
    copyFileSync(join(ROOT, 'package.json'), join(root, 'package.json'));
    mkdirSync(join(root, 'native'));
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    const r = spawnSync(process.execPath, [join(root, 'bin', 'flashslide.js'), 'worker', '--slides', SLIDES, '--redis', 'redis://127.0.0.1:1'], { encoding: 'utf8', env: cliEnv() });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^flashslide: this worker cannot run models: the native addon is not built .*run npm run build:native$/m);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('worker --data is accepted, and a folder it cannot write is refused', () => {
    const file = join(tempDir(), 'not-a-folder');
    writeFileSync(file, 'x');
    const r = cli(['worker', '--data', join(file, 'data'), '--slides', SLIDES, '--redis', 'redis://127.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--data .*not a writable folder/);
    expect(cli(['worker', '--help']).stdout).toMatch(/--data DIR/);
  });

  it('status without Redis: one line, no stack trace', () => {
    const r = cli(['status', '--redis', 'redis://127.0.0.1:1']);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^flashslide: error: .*127\.0\.0\.1:1/);
    expect(r.stderr).not.toMatch(/ioredis|at .*\.js/);
  });
});

describe('the queue knows where a slide goes', () => {
  let redis: RedisHandle;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('submit says what it did without reading like a state; status <slide> finds the job without --data', () => {
    const dir = tempDir();
    const slide = join(dir, 'tiny.svs');
    copyFileSync(TINY, slide);
    const data = join(dir, 'elsewhere');
    const first = cli(['submit', slide, '--data', data, '--redis', redis.url]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/queued .*tiny\.svs \[submitted now\]/);
    expect(first.stdout).not.toMatch(/\[queued\]/);
    const again = cli(['submit', slide, '--data', data, '--redis', redis.url]);
    expect(again.stdout).toMatch(/\[was already in the queue\]/);
    // No --data here: the queue's record of the analysis says where its result goes.
    const status = cli(['status', slide, '--redis', redis.url], dir);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^queued .*tiny\.svs/m);
    // A slide already analysed into the data folder is labelled done, never queued.
    const done = join(dir, 'done');
    expect(cli(['analyze', slide, '--data', done]).code).toBe(0);
    const finished = cli(['submit', slide, '--data', done, '--redis', redis.url]);
    expect(finished.code).toBe(0);
    expect(finished.stdout).toMatch(/^done .*tiny\.svs .*\[already done: not run again \(--force reruns\)\]$/m);
    expect(finished.stdout).not.toMatch(/queued/);
  }, 120_000);
});

describe('ids, hints and polish', () => {
  it('a user-given mpp that makes the slide implausibly small or large is reported by inspect and analyze; a plausible one is not', () => {
    const data = tempDir();
    // The kidney strip carries no mpp; at 0.5 µm/px it would be 0.75 mm long and its overview a
    // few pixels wide, so no tissue is found. At 4 µm/px (its real scale) it is 6 mm.
    const small = cli(['inspect', KIDNEY, '--mpp', '0.5', '--data', data]);
    expect(small.code).toBe(0);
    expect(small.stdout).toMatch(/^warning +with --mpp 0\.5 the slide measures 0\.75 x 0\.45 mm, smaller than tissue on a glass slide usually is.*scanner's magnification/m);
    expect(small.stdout).toMatch(/no tissue found: .*or its mpp is wrong/);
    const right = cli(['inspect', KIDNEY, '--mpp', '4', '--data', data]);
    expect(right.stdout).not.toMatch(/the slide measures/);
    const huge = cli(['inspect', CMU, '--mpp', '40', '--data', data]);
    expect(huge.stdout).toMatch(/with --mpp 40 the slide measures 88\.80 x 118\.68 mm, longer than a glass slide/);
    // CMU-1's own mpp (0.499, vendor) is never second-guessed, even though the crop is small.
    expect(cli(['inspect', CMU, '--data', data]).stdout).not.toMatch(/the slide measures/);
    const analysed = cli(['analyze', KIDNEY, '--fallback-mpp', '0.5', '--data', join(data, 'a')]);
    expect(analysed.code).toBe(0);
    expect(analysed.stdout).toMatch(/^DONE .*kidney-he-strip\.tif: no tissue.*\(with --fallback-mpp 0\.5 the slide measures 0\.75 x 0\.45 mm/m);
  }, 120_000);

  it('--fallback-mpp leaves the analysis id of a slide with its own mpp alone, and changes it for one without', async () => {
    const data = tempDir();
    const own = await describeAnalysis(CMU, { dataDir: data });
    expect((await describeAnalysis(CMU, { dataDir: data, fallbackMpp: 0.3 })).analysisId).toBe(own.analysisId);
    const none = await describeAnalysis(KIDNEY, { dataDir: data });
    expect((await describeAnalysis(KIDNEY, { dataDir: data, fallbackMpp: 0.3 })).analysisId).not.toBe(none.analysisId);
    // --mpp replaces the slide's own value: a different analysis
    expect((await describeAnalysis(CMU, { dataDir: data, mpp: 0.3 })).analysisId).not.toBe(own.analysisId);
  });

  it('the no-mpp hint says how to find the value instead of proposing one; with a recorded magnification it derives it', () => {
    const blind = new MissingMppError('/s.tif', 'no TIFF resolution tags').message;
    expect(blind).toMatch(/scanner's report or the slide's label/);
    expect(blind).toMatch(/--fallback-mpp/);
    expect(new MissingMppError('/s.tif', 'no TIFF resolution tags', 20).message).toMatch(/20x objective, so most likely --mpp 0\.500/);
  });

  it('the demo model is named for what it is', () => {
    expect(DEMO_MODEL_SPEC.name).toBe('flashslide-demo-vit-4x192-p16');
    expect(DEMO_MODEL_SPEC).toMatchObject({ depth: 4, embedDim: 192, patchSize: 16 });
  });

  it('a progress bar left open on a terminal (a failed or interrupted slide) is ended', () => {
    let text = '';
    const tty = { isTTY: true, write: (s: string) => ((text += s), true) } as unknown as NodeJS.WriteStream;
    const bar = progressBar(tty);
    bar({ analysisId: 'a', slideName: 's', stage: 'embed', regionsDone: 1, regionsTotal: 4 });
    expect(text.endsWith('\n')).toBe(false);
    bar.end();
    expect(text.endsWith('\n')).toBe(true);
    bar.end();
    expect(text.endsWith('\n\n')).toBe(false);
  });

  it('inspect writes its mask under the data folder, not into the current folder', () => {
    const cwd = tempDir();
    const r = cli(['inspect', CMU, '--json'], cwd);
    expect(r.code).toBe(0);
    const path = (JSON.parse(r.stdout) as { tissueMaskPath: string }).tissueMaskPath;
    expect(path).toBe(join(cwd, 'data', 'inspect', 'CMU-1-Small-Region.tissue.png'));
    expect(existsSync(path)).toBe(true);
    expect(readdirSync(cwd)).toEqual(['data']);
  });

  it('Ctrl-C during analyze says a re-run resumes, ends the progress line, exits 130', async () => {
    const data = join(tempDir(), 'data');
    const child = spawn(process.execPath, [BIN, 'analyze', CMU, '--data', data, '--region-size', '224', '--device', 'cpu'], { env: cliEnv() });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/embed/.test(stderr)) resolve();
      });
      void exited.then(() => resolve());
    });
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/interrupted\. Finished batches are kept: run the same command again to resume/);
  }, 60_000);
});

describe('secrets: the Redis password never shows', () => {
  it('redacts credentials in URLs and in messages that quote them', async () => {
    const { redactText, redactUrl } = await import('../../worker/queue/connection.js');
    expect(redactUrl('redis://:s3cret@host:6379/2')).toBe('redis://:***@host:6379/2');
    expect(redactUrl('redis://user:s3cret@host:6379')).toBe('redis://***:***@host:6379');
    expect(redactUrl('redis://host:6379')).toBe('redis://host:6379');
    expect(redactText('connect failed for redis://:s3cret@host', 'redis://:s3cret@host')).not.toContain('s3cret');
  });

  it('worker, submit, status and serve with an unreachable password-protected Redis: one line each, no password', () => {
    const url = 'redis://:hunter2-secret@127.0.0.1:1';
    for (const args of [['worker', '--redis', url, '--slides', SLIDES, '--data', tempDir()], ['submit', CMU, '--redis', url], ['status', '--redis', url], ['serve', '--redis', url, '--port', '0']]) {
      const r = cli(args);
      expect(r.code, args[0]).not.toBe(0);
      expect(r.stdout + r.stderr, args[0]).not.toContain('hunter2');
      expect(r.stderr, args[0]).toContain('redis://:***@127.0.0.1:1');
    }
  });
});

describe('damaged model weights', () => {
  it('a NaN in the weights is refused once, when the model loads, before any slide is analysed', async () => {
    const { SafetensorsFile } = await import('../../worker/infer/safetensors.js');
    const files = await resolveModelFiles('demo');
    const dir = tempDir();
    const weights = join(dir, 'damaged.safetensors');
    const bytes = readFileSync(files.weights);
    const info = SafetensorsFile.parse(files.weights, bytes).info('blocks.1.mlp.fc1.weight');
    // One value of one tensor: NaN in its dtype.
    if (info.dtype === 'F32') bytes.writeUInt32LE(0x7fc00000, info.begin + 8);
    else bytes.writeUInt16LE(0x7fc0, info.begin + 4);
    writeFileSync(weights, bytes);
    copyFileSync(files.config, join(dir, 'damaged.json'));
    const data = join(dir, 'data');
    const r = cli(['analyze', CMU, TINY, '--data', data, '--model', weights, '--device', 'cpu']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/damaged\.safetensors: tensor "blocks\.1\.mlp\.fc1\.weight" holds NaN at element \d+: the checkpoint is damaged/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(data) ? readdirSync(data).filter((d) => d !== 'embeddings') : []).toEqual([]);
    // An infinite value (here -Inf, in the first layer's norm) the same way.
    const inf = SafetensorsFile.parse(files.weights, readFileSync(files.weights)).info('blocks.0.norm1.weight');
    const bytes2 = readFileSync(files.weights);
    if (inf.dtype === 'F32') bytes2.writeUInt32LE(0xff800000, inf.begin);
    else bytes2.writeUInt16LE(0xff80, inf.begin);
    writeFileSync(weights, bytes2);
    const r2 = cli(['analyze', CMU, TINY, '--data', data, '--model', weights, '--device', 'cpu']);
    expect(r2.code).toBe(3);
    expect(r2.stderr).toMatch(/damaged\.safetensors: tensor "blocks\.0\.norm1\.weight" holds an infinite value at element 0: the checkpoint is damaged/);
    expect(r2.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('names from outside', () => {
  it('slides named "..svs", ".hidden.svs" or 200 characters long get safe result folders and results, not "internal error"', () => {
    const dir = tempDir();
    const names = ['..svs', '.hidden.svs', `${'long-name-'.repeat(20)}.svs`];
    for (const n of names) copyFileSync(TINY, join(dir, n));
    const data = join(dir, 'data');
    const r = cli(['analyze', ...names.map((n) => join(dir, n)), '--data', data, '--device', 'cpu']);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').filter((l) => l.startsWith('DONE'))).toHaveLength(3);
    const folders = readdirSync(data).filter((d) => d !== 'embeddings');
    expect(folders).toHaveLength(3);
    for (const f of folders) {
      expect(f.startsWith('.')).toBe(false);
      expect(f.length).toBeLessThanOrEqual(80 + 13);
    }
  });

  it('a newline in a file name cannot forge an output line', () => {
    const dir = tempDir();
    const forged = join(dir, 'a\nDONE    evil: score 0.000, 0 anomalous regions -> x.svs');
    copyFileSync(TINY, forged);
    const r = cli(['analyze', forged, '--data', join(dir, 'data'), '--device', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('a\\x0aDONE');
  });

  it('symlinked slides and folders in a submitted folder are followed, not dropped; a dangling link fails by name', async () => {
    const { findSlides } = await import('../../worker/submit/find-slides.js');
    const dir = tempDir();
    const cases = join(dir, 'cases');
    mkdirSync(cases);
    symlinkSync(CMU, join(cases, 'linked.svs'));
    symlinkSync(join(ROOT, 'test', 'fixtures', 'slides'), join(cases, 'linked-folder'));
    symlinkSync(cases, join(cases, 'linked-folder-loop'));
    symlinkSync(join(dir, 'gone.svs'), join(cases, 'dangling.svs'));
    const found = await findSlides([cases]);
    expect(found).toContain(join(cases, 'linked.svs'));
    expect(found).toContain(join(cases, 'dangling.svs'));
    expect(found.filter((p) => p.startsWith(join(cases, 'linked-folder/')))).toHaveLength(6);
  });
});
