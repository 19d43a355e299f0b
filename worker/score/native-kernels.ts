/**
 * The addon's scoring kernels, when this build has them: the addon is built by `npm run build`
 * (and in CI), but a checkout without a C++ toolchain, or an addon built before these kernels
 * existed, still scores, in JavaScript.
 */
import { loadNativeAddon, type NativeScoreKernels } from '../native/addon.js';

export function nativeScoreKernels(): NativeScoreKernels | null {
  const addon = loadNativeAddon();
  if (addon instanceof Error) return null;
  const k = addon as Partial<NativeScoreKernels>;
  const complete =
    typeof k.createNearestIndex === 'function' &&
    typeof k.nearestDistances === 'function' &&
    typeof k.projectCentered === 'function' &&
    typeof k.combineCentered === 'function';
  return complete ? addon : null;
}
