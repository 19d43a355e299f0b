/**
 * The addon's scoring kernels, when this build has them: the addon is built by `npm run build`
 * (and in CI), but a checkout without a C++ toolchain, or an addon built before these kernels
 * existed, still scores, in JavaScript.
 */
import { addonFunctions, type NativeScoreKernels } from '../native/addon.js';

const NAMES: readonly (keyof NativeScoreKernels)[] = ['createNearestIndex', 'nearestDistances', 'projectCentered', 'combineCentered'];

export function nativeScoreKernels(): NativeScoreKernels | null {
  return addonFunctions<NativeScoreKernels>(NAMES);
}
