/**
 * `model check`: runs a reference input through the engine and compares with reference features,
 * so a user can verify a checkpoint they converted (or our engine against timm).
 *
 * The io file is safetensors with `input_u8` [B, H, W, 3] uint8 and `features` [B, T, D] float32
 * (timm `forward_features`), as written by ../shared/fixtures/timm/make_fixtures.py.
 */
import { SafetensorsFile } from './safetensors.js';
import { EngineError, VitEngine, type DeviceRequest } from './vit-engine.js';

/** Relative error bounds: fp32 on the CPU, bf16 with fp32 accumulation on the GPU. */
export const CHECK_TOLERANCE = { cpu: 1e-4, cuda: 1e-2 } as const;

export interface ModelCheckResult {
  pass: boolean;
  device: 'cpu' | 'cuda';
  shape: [number, number, number];
  maxAbsErr: number;
  /** ||ours - ref||_2 / ||ref||_2 over all elements. */
  relErr: number;
  tolerance: number;
  millis: number;
}

export async function checkModel(
  weights: string,
  ioPath: string,
  options: { device?: DeviceRequest; config?: string | undefined; tolerance?: number | undefined } = {},
): Promise<ModelCheckResult> {
  const io = await SafetensorsFile.read(ioPath);
  const input = io.info('input_u8');
  const features = io.info('features');
  if (input.dtype !== 'U8' || input.shape.length !== 4 || input.shape[3] !== 3) {
    throw new EngineError('bad_input', `${ioPath}: input_u8 must be U8 [B, H, W, 3], got ${input.dtype}${JSON.stringify(input.shape)}`);
  }
  if (features.shape.length !== 3) {
    throw new EngineError('bad_input', `${ioPath}: features must be [B, T, D], got ${JSON.stringify(features.shape)}`);
  }
  const [B, H, W] = input.shape as [number, number, number, number];
  const engine = await VitEngine.load(weights, { device: options.device, config: options.config });
  const T = engine.tokens(H, W);
  const D = engine.arch.embedDim;
  const want = features.shape as [number, number, number];
  if (want[0] !== B || want[1] !== T || want[2] !== D) {
    throw new EngineError(
      'shape_mismatch',
      `${ioPath}: reference features are ${JSON.stringify(want)} but the model gives [${B}, ${T}, ${D}] for ${H}x${W} inputs (wrong model or config?)`,
    );
  }
  // A copy: the engine reads the input in place and the file buffer is shared with the reference.
  const out = await engine.forward(Buffer.from(io.raw('input_u8')), B, H, W);
  const ref = io.float32('features');
  let num = 0;
  let den = 0;
  let maxAbsErr = 0;
  for (let i = 0; i < ref.length; i++) {
    const a = out.data[i] as number;
    const b = ref[i] as number;
    const d = a - b;
    // NaN must fail: every comparison with NaN is false, so test for it explicitly.
    if (Number.isNaN(a)) maxAbsErr = Number.NaN;
    else if (Math.abs(d) > maxAbsErr) maxAbsErr = Math.abs(d);
    num += d * d;
    den += b * b;
  }
  const relErr = den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
  const tolerance = options.tolerance ?? CHECK_TOLERANCE[engine.device];
  return {
    pass: Number.isFinite(relErr) && Number.isFinite(maxAbsErr) && relErr < tolerance,
    device: engine.device,
    shape: [B, T, D],
    maxAbsErr,
    relErr,
    tolerance,
    millis: out.millis,
  };
}
