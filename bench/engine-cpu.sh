#!/usr/bin/env bash
# CPU engine benchmark: ViT-S/16 and ViT-B/16 forwards at 224, 512 and 1024 px (batch 1, fp32,
# seeded random weights), printing ms, tokens/s, GFLOP/s and peak RSS, plus the attention kernel
# alone against the machine's sgemm rate (the ceiling for a BLAS-bound CPU forward).
# Record results with machine and date in bench/NOTES.md.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%F)"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
make -s -C kernels bench
