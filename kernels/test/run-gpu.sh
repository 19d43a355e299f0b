#!/usr/bin/env bash
# flashslide: build, test and benchmark the CUDA backend on a GPU machine, in one call.
#
#   bash kernels/test/run-gpu.sh          (from anywhere; runs in the repository root)
#
# Expects (git-ignored, carried to the machine):
#   .device/node-v20-linux-x64.tar.xz     Node 20 + headers (copy of shared/device/)
#   .device/node_modules/                 the node_modules the CLI needs at run time (sharp
#                                         linux-x64, node-addon-api, ...); node-gyp optional
#                                         (else the addon is built with g++ directly)
#   dist/                                 the compiled TypeScript, unless node_modules/typescript
#                                         is carried (then it is built here)
# and on the machine: nvcc + cuBLASLt under $CUDA_HOME (/usr/local/cuda), g++, make, python3
# with torch + timm + safetensors (+ triton not needed).
# Steps (each one's failure is recorded and the later steps still run):
#   node      unpack Node to /opt/node, link node_modules
#   env       nvidia-smi, nvcc --version, torch/timm versions
#   build     make -C kernels -j16 cuda; node scripts/build.mjs (addon with CUDA + dist/);
#             register/spill report of the flash kernel
#   attn-test kernels/build/cuda/test_attention (float64 + reference-kernel checks)
#   engine-test kernels/build/cuda/test_engine_cuda: Engine(Device::Cuda) vs the timm fixtures
#   knn-test  kernels/build/cuda/test_knn_cuda: nearest-neighbour distances on the GPU (cuBLASLt
#             fp32 + row minimum) vs the CPU double loop, plus one 100k x 20k x 1024 timing
#   knn-node  node bench/knn.mjs --devices cuda: the same search through the addon, checked
#             against the JavaScript search (fails beyond 1e-4 relative), with timings
#   model-*   node bin/flashslide.js model check <fixture> --device cuda, each timm fixture
#   bench     python3 bench/gpu/bench.py: one table, ours vs PyTorch SDPA and timm
# Logs go to $OUT (default /tmp/flashslide-gpu): build.log, gpu-tests.log, bench.txt,
# bench.json, summary.txt. Exit status 1 if any step failed.
set -u
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
OUT=${OUT:-/tmp/flashslide-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export PATH="$PATH:$CUDA_HOME/bin"
T0=$(date +%s)

NAMES=()
CODES=()
SECS=()
# step NAME LOGFILE TIMEOUT_S CMD...: runs CMD with a time limit, appending its output to
# $OUT/LOGFILE and to stdout; records the exit status.
step() {
  local name=$1 log=$2 limit=$3
  shift 3
  local t=$(date +%s)
  echo "===== [$name] $* (limit ${limit}s, at +$((t - T0))s)" | tee -a "$OUT/$log"
  set -o pipefail
  if declare -F "$1" >/dev/null; then  # a function of this script: run it in a child bash
    timeout --kill-after=10 "$limit" bash -c "$(declare -f); $(printf '%q ' "$@")" 2>&1 | tee -a "$OUT/$log"
  else
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$OUT/$log"
  fi
  local rc=$?
  set +o pipefail
  [ "$rc" = 124 ] && echo "===== [$name] TIMED OUT after ${limit}s" | tee -a "$OUT/$log"
  echo "===== [$name] exit $rc in $(($(date +%s) - t))s" | tee -a "$OUT/$log"
  NAMES+=("$name")
  CODES+=("$rc")
  SECS+=("$(($(date +%s) - t))")
  return 0
}

setup_node() {
  if [ ! -f .device/node-v20-linux-x64.tar.xz ]; then
    echo "missing .device/node-v20-linux-x64.tar.xz (carry .device/)"
    return 1
  fi
  mkdir -p /opt/node && tar -xJf .device/node-v20-linux-x64.tar.xz -C /opt/node --strip-components=1 || return 1
  # node_modules travels as a tarball where the tree would not fit the call's size limit.
  if [ ! -d .device/node_modules ] && [ -f .device/node_modules.tar.xz ]; then tar -xJf .device/node_modules.tar.xz -C .device || return 1; fi
  if [ ! -e node_modules ]; then
    if [ -d .device/node_modules ]; then ln -s .device/node_modules node_modules; else echo "missing .device/node_modules"; return 1; fi
  fi
  /opt/node/bin/node --version
}
step node build.log 120 setup_node
export PATH="/opt/node/bin:$PATH" npm_config_nodedir=/opt/node

show_env() {
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,utilization.gpu --format=csv
  nvidia-smi
  nvcc --version
  g++ --version | head -1
  ls "$CUDA_HOME"/lib64/libcublasLt.so* 2>&1 | head -3
  python3 -c 'import torch, timm; print("torch", torch.__version__, "cuda", torch.version.cuda, "timm", timm.__version__, torch.cuda.get_device_name())'
}
step env build.log 60 show_env

# The GPU machine has no OpenBLAS package. A carried one (.device/openblas.tar.xz: the Debian
# 12 libopenblas.so.0 + libgfortran/libquadmath + cblas.h, made on the dev machine) is installed
# under /opt/openblas, so the CPU parts of a CUDA analysis (the self scorer's products) run
# at BLAS speed; without it the CPU backend links the plain-loop shim (correct, slow).
if [ -f .device/openblas.tar.xz ] && [ ! -d /opt/openblas ]; then
  tar -xJf .device/openblas.tar.xz -C /opt && echo /opt/openblas/lib >/etc/ld.so.conf.d/flashslide-openblas.conf &&
    ldconfig && echo "openblas: installed the carried copy under /opt/openblas" | tee -a "$OUT/build.log"
fi
if [ -d /opt/openblas ]; then
  export CPATH="/opt/openblas/include${CPATH:+:$CPATH}" LIBRARY_PATH="/opt/openblas/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
fi
# No OpenBLAS on the machine: the CPU backend (linked, never timed here) uses the shim.
export MAKE_BLAS=BLAS_SHIM=0
if ! { echo '#include <cblas.h>' | g++ -E -x c++ - >/dev/null 2>&1 && ldconfig -p | grep -q libopenblas; }; then
  echo "no OpenBLAS here: building with BLAS_SHIM=1" | tee -a "$OUT/build.log"
  export FLASHSLIDE_BLAS_SHIM=1 MAKE_BLAS=BLAS_SHIM=1
fi
export OUT CUDA_HOME ROOT
# The addon without node-gyp (the Node tarball has no npm): the sources and flags of
# native/binding.gyp (read from it), the CUDA library, one g++ call.
build_addon_direct() {
  local napi srcs extra=()
  napi=$(node -p "require('node-addon-api').include_dir") || return 1
  srcs=$(python3 -c '
import ast
lines = [l for l in open("native/binding.gyp").read().splitlines() if not l.lstrip().startswith("#")]
print(" ".join("native/" + s for s in ast.literal_eval("\n".join(lines))["targets"][0]["sources"]))') || return 1
  if [ "${FLASHSLIDE_BLAS_SHIM:-0}" = 1 ]; then
    srcs="$srcs kernels/cuda/blas_shim/cblas_shim.cpp"
    extra+=(-Ikernels/cuda/blas_shim)
  else
    extra+=(-lopenblas)
  fi
  if pkg-config --exists openslide; then
    extra+=(-DFLASHSLIDE_HAVE_OPENSLIDE=1 $(pkg-config --cflags --libs openslide))
  fi
  mkdir -p native/build/Release
  # shellcheck disable=SC2086
  g++ -shared -fPIC -std=c++17 -O3 -march=x86-64-v2 -fopenmp -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS \
    -DBUILDING_NODE_EXTENSION -DFLASHSLIDE_HAVE_CUDA=1 -I/opt/node/include/node -I"$napi" -Ikernels $srcs \
    kernels/build/libflashslide_cuda.a -L"$CUDA_HOME/lib64" -Wl,-rpath,"$CUDA_HOME/lib64" -lcublasLt -lcudart \
    "${extra[@]}" -o native/build/Release/flashslide.node
}

build_all() {
  make -C kernels -j16 cuda "CUDA_HOME=$CUDA_HOME" "$MAKE_BLAS" || return 1
  local gyp=
  for c in "${npm_config_node_gyp:-}" node_modules/node-gyp/bin/node-gyp.js .device/node-gyp/bin/node-gyp.js \
           .device/npm/node_modules/node-gyp/bin/node-gyp.js; do
    [ -n "$c" ] && [ -f "$c" ] && gyp=$c && break
  done
  if [ -n "$gyp" ]; then
    echo "addon: node-gyp at $gyp"
    FLASHSLIDE_CUDA=1 npm_config_node_gyp="$ROOT/$gyp" node scripts/build.mjs --native-only || return 1
  else
    echo "addon: no node-gyp carried: building native/build/Release/flashslide.node with g++ from binding.gyp's sources"
    build_addon_direct || return 1
  fi
  if [ -f dist/worker/cli/main.js ]; then
    echo "dist/: carried, not rebuilt"
  elif [ -d node_modules/typescript ]; then
    node scripts/build.mjs --ts-only || return 1
  else
    echo "no dist/ and no node_modules/typescript: build dist/ before the run and carry it" && return 1
  fi
  node -e 'const a = require("./native/build/Release/flashslide.node"); console.log("addon engineDevices:", a.engineDevices)'
  # Resources of every flash variant on sm_90a (registers, spills, shared memory).
  nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -c kernels/cuda/flash_attn_fwd.cu \
    -o /dev/null 2>&1 | grep -E "Compiling entry|registers|spill" | sed -E "s/.*flashFwdKernelILi([0-9]+)ELi([0-9]+)ELi([0-9]+)ELi([0-9]+)ELi([0-9]+)ELi([0-9]+)E.* for '(sm_[0-9a]+)'/flash d\1_w\2_m\3_n\4 minBlocks \5 flags \6 (\7)/"
  # The Hopper kernel: resources, and proof that it runs on wgmma/TMA (HGMMA, UTMALDG in SASS;
  # ptxas warns here if it had to serialise the wgmma's).
  nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -c kernels/cuda/flash_attn_wgmma.cu \
    -o /tmp/flash_attn_wgmma.o 2>&1 | grep -E "warning|registers|spill" | sed -E 's/^ptxas info *: //'
  cuobjdump -sass /tmp/flash_attn_wgmma.o | grep -oE "HGMMA\.[0-9x]+[A-Z0-9.]*|UTMALDG[A-Z0-9.]*|SYNCS\.[A-Z.]+" | sort | uniq -c
  return 0
}
step build build.log 420 build_all

# analyze_cuda: the whole pipeline on a real slide on the GPU; the heatmap comes back in
# $OUT/analyze-cuda.tar to be compared with a CPU run of the same options (bf16 tolerance).
analyze_cuda() {
  rm -rf /tmp/flashslide-gpu-data
  node bin/flashslide.js analyze test/fixtures/slides/CMU-1-Small-Region.svs --device cuda --data /tmp/flashslide-gpu-data || return 1
  local d
  d=$(ls -d /tmp/flashslide-gpu-data/*/ | head -1)
  tar -cf "$OUT/analyze-cuda.tar" -C "$d" heatmap.npy heatmap.json summary.json regions.geojson
}

# FLASHSLIDE_GPU_STEPS: a comma-separated list of groups (default all = tests,bench):
#   tests   every GPU test (attention variants, engine, nearest neighbour, model check, analyze)
#   engine  the engine tests without the attention and kNN suites (engine, model check, analyze)
#   attn    the attention suite alone
#   bench   attention and ViT against PyTorch/timm
#   e2e     the 40000 px end-to-end runs (demo model, ViT-L/16, a batch of three ViT-L slides)
#   vit-l   of those only the single ViT-L/16 run
#   queue   queue mode (redis-server + one worker) on CMU-1 and, after e2e, on the mosaic
#   scale   one worker per GPU against one worker on six mosaics (for nvidia-h200-x2)
#   profile the mosaic (ViT-L/16, --tokens tissue) under node --cpu-prof, summarised
#   tokens  token dropping: the mosaic with the ViT-L/16, --tokens all then tissue (timings), and
#           the agreement of the two heatmaps there and on the real slides (bench/token-agreement.mjs)
#   wall    where the single-slide wall goes: the mosaic (ViT-L/16, --tokens tissue) with its
#           --data on the disk and on /dev/shm, with --embeddings drop, then a batch of three on
#           /dev/shm (engine share)
#   all-e2e tests,bench,e2e
# Groups can run in separate calls on the same (still warm) machine, so that each call stays
# inside the device tool's 10 minutes.
STEPS=",${FLASHSLIDE_GPU_STEPS:-all},"
STEPS=${STEPS//,all,/,tests,bench,}
STEPS=${STEPS//,all-e2e,/,tests,bench,e2e,}
want() { [[ "$STEPS" == *",$1,"* ]]; }
if want tests || want attn; then
  step attn-test gpu-tests.log 240 ./kernels/build/cuda/test_attention
fi
if want tests; then
  step knn-test gpu-tests.log 180 ./kernels/build/cuda/test_knn_cuda
  step knn-node gpu-tests.log 300 node bench/knn.mjs --devices cuda --queries 100000 --bank 20000 --dims 384,1024
fi
if want tests || want engine; then
  step engine-test gpu-tests.log 120 ./kernels/build/cuda/test_engine_cuda test/fixtures/timm
  for io in test/fixtures/timm/*.io.safetensors; do
    w=${io%.io.safetensors}.safetensors
    step "model-$(basename "${w%.safetensors}")" gpu-tests.log 120 node bin/flashslide.js model check "$w" "$io" --device cuda
  done
  step analyze-cuda gpu-tests.log 180 analyze_cuda
fi
if want bench; then
  step bench bench.txt 420 python3 bench/gpu/bench.py
fi
# e2e: the whole pipeline on a synthetic 40000 x 40000 slide on the GPU, with the demo model and
# with a UNI-shaped ViT-L/16 (random weights), as bench/e2e-analyze.mjs prints it.
e2e_vit_l() {
  python3 bench/gpu/make_vit_l.py /tmp/vit_l16.safetensors || return 1
  node bench/e2e-analyze.mjs --size 40000 --device cuda --batch-size 8 --slide /tmp/mosaic-40000.tif --model /tmp/vit_l16.safetensors
}
# A batch of three such slides in one analyze call: one slide's scoring overlaps the next one's embedding.
e2e_vit_l_batch() {
  [ -f /tmp/vit_l16.safetensors ] || python3 bench/gpu/make_vit_l.py /tmp/vit_l16.safetensors || return 1
  node bench/e2e-analyze.mjs --size 40000 --device cuda --batch-size 8 --slide /tmp/mosaic-40000.tif --model /tmp/vit_l16.safetensors --copies 3
}
# tokens: --tokens all against --tokens tissue with the UNI-shaped ViT-L/16.
tokens_compare() {
  [ -f /tmp/vit_l16.safetensors ] || python3 bench/gpu/make_vit_l.py /tmp/vit_l16.safetensors || return 1
  local rc=0 t
  rm -rf /tmp/tok && mkdir -p /tmp/tok
  for t in all tissue; do
    node bench/e2e-analyze.mjs --size 40000 --device cuda --batch-size 8 --slide /tmp/mosaic-40000.tif \
      --model /tmp/vit_l16.safetensors --tokens $t --result-to /tmp/tok/mosaic-$t || rc=1
  done
  for s in CMU-1-Small-Region.svs:0 kidney-he-strip.tif:0.5; do
    local f=${s%%:*} mpp=${s##*:}
    for t in all tissue; do
      node bin/flashslide.js analyze "test/fixtures/slides/$f" --device cuda --model /tmp/vit_l16.safetensors --batch-size 8 \
        --tokens $t --data /tmp/tok/data-$t $([ "$mpp" != 0 ] && echo --mpp "$mpp") --json >/tmp/tok/$f-$t.json || rc=1
    done
  done
  node bench/token-agreement.mjs --header
  node bench/token-agreement.mjs /tmp/tok/mosaic-all /tmp/tok/mosaic-tissue --label "mosaic 40000 px, ViT-L/16" || rc=1
  for f in CMU-1-Small-Region.svs kidney-he-strip.tif; do
    node bench/token-agreement.mjs "$(node -p "require('/tmp/tok/$f-all.json')[0].resultDir")" \
      "$(node -p "require('/tmp/tok/$f-tissue.json')[0].resultDir")" --label "$f, ViT-L/16" || rc=1
  done
  return $rc
}
if want tokens; then
  step tokens tokens.txt 560 tokens_compare
fi
# profile: where the analysing process's main thread spends the mosaic's wall time (ViT-L/16,
# --tokens tissue): a V8 CPU profile, summarised by bench/profile-summary.mjs.
profile_e2e() {
  [ -f /tmp/vit_l16.safetensors ] || python3 bench/gpu/make_vit_l.py /tmp/vit_l16.safetensors || return 1
  rm -rf /tmp/prof
  FLASHSLIDE_E2E_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" node bench/e2e-analyze.mjs --size 40000 --device cuda \
    --batch-size 8 --slide /tmp/mosaic-40000.tif --model /tmp/vit_l16.safetensors --tokens tissue || return 1
  node bench/profile-summary.mjs /tmp/prof/*.cpuprofile --top 30
}
if want profile; then
  step profile profile.txt 400 profile_e2e
fi
# wall: is it the disk? The same run with the part files on the disk (/tmp) and in memory
# (/dev/shm), then a batch of three slides (the engine's share of the batch's wall).
wall_e2e() {
  [ -f /tmp/vit_l16.safetensors ] || python3 bench/gpu/make_vit_l.py /tmp/vit_l16.safetensors || return 1
  local d
  for d in /tmp /dev/shm; do
    echo "--data in $d"
    node bench/e2e-analyze.mjs --size 40000 --device cuda --batch-size 8 --slide /tmp/mosaic-40000.tif \
      --model /tmp/vit_l16.safetensors --tokens tissue --data-in $d || return 1
  done
  echo "--data in /tmp, --embeddings drop (only the parts written before the scoring is fitted)"
  node bench/e2e-analyze.mjs --size 40000 --device cuda --batch-size 8 --slide /tmp/mosaic-40000.tif \
    --model /tmp/vit_l16.safetensors --tokens tissue --embeddings drop || return 1
  echo "batch of 3, --data in /dev/shm"
  node bench/e2e-analyze.mjs --size 40000 --device cuda --batch-size 8 --slide /tmp/mosaic-40000.tif \
    --model /tmp/vit_l16.safetensors --tokens tissue --data-in /dev/shm --copies 3
}
if want wall; then
  step wall wall.txt 560 wall_e2e
fi
# pool: the same run with libuv's pool at 16 threads (the CLI's default) and at 64: do region
# decodes queued on the pool hold back the engine's forwards (which wait for a pool thread)?
pool_e2e() {
  [ -f /tmp/vit_l16.safetensors ] || python3 bench/gpu/make_vit_l.py /tmp/vit_l16.safetensors || return 1
  local n
  for n in 16 64; do
    echo "UV_THREADPOOL_SIZE=$n"
    UV_THREADPOOL_SIZE=$n node bench/e2e-analyze.mjs --size 40000 --device cuda --batch-size 8 --slide /tmp/mosaic-40000.tif \
      --model /tmp/vit_l16.safetensors --tokens tissue || return 1
  done
}
if want pool; then
  step pool pool.txt 500 pool_e2e
fi
if want e2e; then
  step e2e-demo e2e.txt 420 node bench/e2e-analyze.mjs --size 40000 --device cuda --batch-size 8 --slide /tmp/mosaic-40000.tif
fi
if want e2e || want vit-l; then
  step e2e-vit-l e2e.txt 420 e2e_vit_l
fi
if want e2e; then
  step e2e-vit-l-batch e2e.txt 420 e2e_vit_l_batch
fi

# queue: queue mode on the GPU. A redis-server (the machine's, else a carried copy,
# .device/redis.tar.xz: redis-server and its libraries from the dev machine), one `flashslide worker --device cuda`, and submissions:
# CMU-1 (its heatmap must equal analyze-cuda's: same engine, same batches), then, when the e2e
# steps left them in /tmp, the 40000 px mosaic with the demo model and with the ViT-L/16.
queue_cuda() {
  local port=6390 data=/tmp/flashslide-queue-data redis_bin=redis-server libs=
  if ! command -v redis-server >/dev/null 2>&1; then
    [ -f .device/redis.tar.xz ] && [ ! -d .device/redis ] && tar -xJf .device/redis.tar.xz -C .device
    [ -x .device/redis/redis-server ] || { echo "no redis-server here and none carried in .device/redis.tar.xz"; return 1; }
    redis_bin=.device/redis/redis-server libs="$ROOT/.device/redis/lib"
  fi
  rm -rf "$data"
  LD_LIBRARY_PATH="$libs" "$redis_bin" --port $port --save '' --appendonly no --maxmemory-policy noeviction >"$OUT/queue-redis.log" 2>&1 &
  local rpid=$!
  sleep 1
  local url=redis://127.0.0.1:$port
  mkdir -p "$data"
  node bin/flashslide.js worker --redis $url --device cuda --concurrency 2 --data "$data" --slides test/fixtures/slides --slides /tmp --models /tmp 2>"$OUT/queue-worker.log" &
  local wpid=$! rc=0 t
  secs() { echo "$(( ($(date +%s%N) - $1) / 1000000 )) ms"; }
  t=$(date +%s%N)
  node bin/flashslide.js submit test/fixtures/slides/CMU-1-Small-Region.svs --redis $url --data "$data" --device cuda --wait --json >"$OUT/queue-cmu.json" || rc=1
  echo "queue: CMU-1 in $(secs $t)"
  node --input-type=module -e '
    import { readFileSync, readdirSync } from "node:fs";
    import { decodeNpyFloat32 } from "./dist/worker/store/npy.js";
    const heat = (root) => { const d = readdirSync(root).find((n) => n.startsWith("CMU-1")); return decodeNpyFloat32(readFileSync(`${root}/${d}/heatmap.npy`)).data; };
    const q = heat(process.argv[1]), e = heat("/tmp/flashslide-gpu-data");
    let worst = 0, nanDiff = 0;
    for (let i = 0; i < q.length; i++) { if (Number.isNaN(q[i]) !== Number.isNaN(e[i])) nanDiff++; else if (!Number.isNaN(q[i])) worst = Math.max(worst, Math.abs(q[i] - e[i])); }
    console.log(`queue vs embedded (analyze-cuda) CMU-1 heatmap: ${q.length} cells, NaN mismatches ${nanDiff}, max |diff| ${worst}`);
    process.exit(q.length === e.length && nanDiff === 0 && worst < 1e-3 ? 0 : 1);
  ' "$data" || rc=1
  if [ -f /tmp/mosaic-40000.tif ]; then
    t=$(date +%s%N)
    node bin/flashslide.js submit /tmp/mosaic-40000.tif --redis $url --data "$data" --device cuda --batch-size 8 --wait --json >"$OUT/queue-mosaic-demo.json" || rc=1
    echo "queue: 40000 px mosaic, demo model, in $(secs $t) (submit to done)"
    if [ -f /tmp/vit_l16.safetensors ]; then
      t=$(date +%s%N)
      node bin/flashslide.js submit /tmp/mosaic-40000.tif --redis $url --data "$data" --device cuda --batch-size 8 --model /tmp/vit_l16.safetensors --wait --json >"$OUT/queue-mosaic-vit-l.json" || rc=1
      echo "queue: 40000 px mosaic, ViT-L/16, in $(secs $t) (submit to done)"
      cat "$(ls -d "$data"/mosaic-40000-*/ | tail -1)/summary.json" 2>/dev/null | head -40
    fi
  fi
  kill -TERM $wpid 2>/dev/null; wait $wpid
  kill $rpid 2>/dev/null; wait $rpid 2>/dev/null
  tail -5 "$OUT/queue-worker.log"
  return $rc
}
if want queue; then
  step queue gpu-tests.log 420 queue_cuda
fi
# scale: queue mode over every GPU of the machine, one worker each, against one worker, on six
# distinct 40000 px mosaics with the ViT-L/16 (bench/scale-workers.mjs). Meant for the
# nvidia-h200-x2 kind; on one GPU run B is a second worker sharing it.
scale_workers() {
  local redis_bin=redis-server
  if ! command -v redis-server >/dev/null 2>&1; then
    [ -f .device/redis.tar.xz ] && [ ! -d .device/redis ] && tar -xJf .device/redis.tar.xz -C .device
    [ -x .device/redis/redis-server ] || { echo "no redis-server here and none carried in .device/redis.tar.xz"; return 1; }
    # Its libraries for it alone, not for the node processes beside it.
    redis_bin=/tmp/redis-server-carried
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$ROOT/.device/redis/lib" "$ROOT/.device/redis/redis-server" >"$redis_bin"
    chmod +x "$redis_bin"
  fi
  [ -f /tmp/vit_l16.safetensors ] || python3 bench/gpu/make_vit_l.py /tmp/vit_l16.safetensors || return 1
  local workers
  workers=$(nvidia-smi -L | grep -c '^GPU ')
  [ "$workers" -lt 2 ] && workers=2
  node bench/scale-workers.mjs --slides 6 --size 40000 --model /tmp/vit_l16.safetensors --workers "$workers" --redis-server "$redis_bin"
}
if want scale; then
  step scale scale.txt 590 scale_workers
fi

{
  echo "flashslide GPU run: $(date -u +%FT%TZ), $(($(date +%s) - T0))s total"
  fail=0
  for i in "${!NAMES[@]}"; do
    s=ok
    [ "${CODES[$i]}" != 0 ] && s="FAILED (exit ${CODES[$i]})" && fail=1
    printf '  %-40s %-18s %5ss\n' "${NAMES[$i]}" "$s" "${SECS[$i]}"
  done
  echo "logs: $OUT"
} | tee "$OUT/summary.txt"
grep -q FAILED "$OUT/summary.txt" && exit 1
exit 0
