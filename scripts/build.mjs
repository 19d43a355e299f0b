#!/usr/bin/env node
// Builds what flashslide needs beyond node_modules: the native addon (native/, node-gyp) and the
// compiled TypeScript (dist/). Only Node built-ins here: it runs before anything else exists.
//   node scripts/build.mjs               both
//   node scripts/build.mjs --native-only
//   node scripts/build.mjs --ts-only
//   node scripts/build.mjs --app-only    the browser review app (viewer/app -> dist/app, Vite)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkBuildPackages } from './system-packages.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));

function run(cmd, argv, cwd = root) {
  const r = spawnSync(cmd, argv, { cwd, stdio: 'inherit', env: process.env });
  if (r.status !== 0) {
    console.error(`flashslide build: ${[cmd, ...argv].join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
}

/** node-gyp: the one npm ships (npm sets npm_config_node_gyp), else next to this Node's npm. */
export function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  const found = candidates.find((c) => c && existsSync(c));
  if (!found) {
    console.error('flashslide build: node-gyp not found (it ships with npm); reinstall Node.js with npm');
    process.exit(1);
  }
  return found;
}

/** Headers of the running Node, so node-gyp never tries to download them (there is no network). */
function nodedirArgs() {
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

/**
 * The CUDA backend is built only where nvcc and cuBLASLt both exist (the GPU machines), with
 * `make -C kernels cuda`; the addon then links it (binding.gyp reads FLASHSLIDE_CUDA). Elsewhere,
 * CI included, nothing changes. FLASHSLIDE_CUDA=0 forces a CPU-only build, =1 makes a missing
 * toolkit an error.
 */
function cudaToolkit() {
  const want = process.env.FLASHSLIDE_CUDA;
  if (want === '0') return null;
  const home = process.env.CUDA_HOME || '/usr/local/cuda';
  const onPath = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' });
  const nvcc = onPath.status === 0 && onPath.stdout.trim() ? onPath.stdout.trim() : join(home, 'bin', 'nvcc');
  const lib64 = join(home, 'lib64');
  const hasCublasLt = existsSync(lib64) && readdirSync(lib64).some((f) => f.startsWith('libcublasLt.so'));
  if (existsSync(nvcc) && hasCublasLt) return { home, nvcc };
  if (want === '1') {
    console.error(`flashslide build: FLASHSLIDE_CUDA=1 but ${existsSync(nvcc) ? `no libcublasLt in ${lib64}` : 'nvcc was not found'}`);
    process.exit(1);
  }
  if (existsSync(nvcc)) console.warn(`flashslide build: nvcc found but no cuBLASLt in ${lib64}: building without the CUDA backend`);
  return null;
}

/** A CBLAS the CPU backend can link (header + OpenBLAS). Only asked on CUDA machines. */
function hasBlas() {
  const probe = "echo '#include <cblas.h>' | ${CXX:-g++} -E -x c++ - >/dev/null 2>&1 && ldconfig -p | grep -q libopenblas";
  return spawnSync('sh', ['-c', probe]).status === 0;
}

const only = ['--native-only', '--ts-only', '--app-only'].find((a) => args.has(a));
if (only === undefined || only === '--native-only') {
  const cuda = cudaToolkit();
  // Where CUDA is built, a missing OpenBLAS is not fatal: the CPU backend links the shim below.
  if (!checkBuildPackages({ skip: cuda ? ['libopenblas-dev'] : [] })) process.exit(1);
  if (cuda) {
    const makeArgs = ['-C', join(root, 'kernels'), `-j${cpus().length}`, 'cuda', `NVCC=${cuda.nvcc}`, `CUDA_HOME=${cuda.home}`];
    if (process.env.FLASHSLIDE_BLAS_SHIM === '1' || !hasBlas()) {
      console.warn('flashslide build: no OpenBLAS found: the CPU backend links the plain-loop cblas_sgemm in kernels/cuda/blas_shim (slow)');
      process.env.FLASHSLIDE_BLAS_SHIM = '1';
      makeArgs.push('BLAS_SHIM=1');
    }
    console.log(`flashslide build: CUDA toolkit at ${cuda.home}: building the CUDA backend`);
    run('make', makeArgs);
    process.env.FLASHSLIDE_CUDA = '1';
    process.env.CUDA_HOME = cuda.home;
  }
  const hasOpenSlide = spawnSync('pkg-config', ['--exists', 'openslide']).status === 0;
  if (!hasOpenSlide) {
    console.warn('flashslide build: libopenslide not found: NDPI/MRXS/JPEG 2000 slides will need `apt-get install libopenslide-dev` and a rebuild');
  }
  run(process.execPath, [findNodeGyp(), 'rebuild', ...nodedirArgs()], join(root, 'native'));
}
if (only === undefined || only === '--ts-only') {
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')]);
}
if (only === undefined || only === '--app-only') {
  // Everything the page needs is bundled into dist/app: hospital networks are often offline.
  run(process.execPath, [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', join(root, 'viewer', 'app', 'vite.config.ts'), '--logLevel', 'warn']);
}
