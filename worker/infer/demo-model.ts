/**
 * The demo model: a small ViT with seeded pseudo-random weights in timm's layout, so the whole
 * pipeline runs on a machine where no real foundation model can be downloaded.
 *
 * IT IS NOT DIAGNOSTIC. Its features are random projections of pixels: they respond to colour and
 * texture, which is enough to exercise scoring and heatmaps end to end, not to find disease. For
 * real work use UNI, Virchow, H-optimus or Phikon weights (see README, "Using real models").
 *
 * The bytes are a pure function of DEMO_MODEL_SPEC, so every machine builds the same file.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { encodeSafetensors, type TensorToWrite } from './safetensors.js';
import { seededRng } from '../util/random.js';

/** Named for what it is: 4 blocks, 192 wide, 16 px patches (not a ViT-S/16: 12 blocks, 384 wide). */
export const DEMO_MODEL_SPEC = {
  name: 'flashslide-demo-vit-4x192-p16',
  seed: 20261122,
  patchSize: 16,
  embedDim: 192,
  depth: 4,
  numHeads: 3,
  mlpRatio: 4,
  /** Positional grid the weights are "trained" at; other sizes are resampled like timm does. */
  gridSize: 14,
} as const;

export const DEMO_MODEL_FILES = {
  weights: `${DEMO_MODEL_SPEC.name}.safetensors`,
  config: `${DEMO_MODEL_SPEC.name}.json`,
} as const;

export function demoModelTensors(): Record<string, TensorToWrite> {
  const s = DEMO_MODEL_SPEC;
  const rand = seededRng(s.seed);
  // Box-Muller normal deviates.
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const D = s.embedDim;
  const hidden = D * s.mlpRatio;
  const tensors: Record<string, TensorToWrite> = {};
  const add = (name: string, shape: number[], fill: () => number): void => {
    const n = shape.reduce((a, d) => a * d, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = fill();
    tensors[name] = { dtype: 'F32', shape, data };
  };
  const linear = (name: string, out: number, inp: number): void => {
    const scale = 1 / Math.sqrt(inp);
    add(`${name}.weight`, [out, inp], () => normal() * scale);
    add(`${name}.bias`, [out], () => normal() * 0.02);
  };
  const norm = (name: string): void => {
    add(`${name}.weight`, [D], () => 1 + normal() * 0.05);
    add(`${name}.bias`, [D], () => normal() * 0.02);
  };

  const p = s.patchSize;
  add('patch_embed.proj.weight', [D, 3, p, p], () => normal() / Math.sqrt(3 * p * p));
  add('patch_embed.proj.bias', [D], () => normal() * 0.02);
  add('cls_token', [1, 1, D], () => normal() * 0.02);
  add('pos_embed', [1, 1 + s.gridSize * s.gridSize, D], () => normal() * 0.02);
  for (let i = 0; i < s.depth; i++) {
    const b = `blocks.${i}`;
    norm(`${b}.norm1`);
    linear(`${b}.attn.qkv`, 3 * D, D);
    linear(`${b}.attn.proj`, D, D);
    add(`${b}.ls1.gamma`, [D], () => 0.1);
    norm(`${b}.norm2`);
    linear(`${b}.mlp.fc1`, hidden, D);
    linear(`${b}.mlp.fc2`, D, hidden);
    add(`${b}.ls2.gamma`, [D], () => 0.1);
  }
  norm('norm');
  return tensors;
}

export function demoModelConfig(): Record<string, unknown> {
  const s = DEMO_MODEL_SPEC;
  return {
    name: s.name,
    note: 'Random weights (seeded). NOT a trained model and NOT diagnostic: for testing the pipeline only.',
    patch_size: s.patchSize,
    embed_dim: s.embedDim,
    depth: s.depth,
    num_heads: s.numHeads,
    mlp_act: 'gelu',
    no_embed_class: false,
    reg_tokens: 0,
    img_size: s.gridSize * s.patchSize,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
  };
}

/** Writes the demo weights and config into `dir`; returns their paths. */
export async function writeDemoModel(dir: string): Promise<{ weights: string; config: string }> {
  const weights = join(dir, DEMO_MODEL_FILES.weights);
  const config = join(dir, DEMO_MODEL_FILES.config);
  await writeFileAtomic(weights, encodeSafetensors(demoModelTensors(), { format: 'pt', note: 'flashslide demo model: random weights, not diagnostic' }));
  await writeFileAtomic(config, `${JSON.stringify(demoModelConfig(), null, 1)}\n`);
  return { weights, config };
}
