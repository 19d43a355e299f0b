/**
 * One loaded engine per (weights, config, device) per process: loading a foundation model takes
 * seconds and gigabytes, and every slide a worker processes uses the same one.
 */
import { VitEngine, resolveDevice, type DeviceRequest } from '../infer/vit-engine.js';

const engines = new Map<string, Promise<VitEngine>>();

export function getEngine(weights: string, config: string, device: DeviceRequest): Promise<VitEngine> {
  const key = `${weights}\0${config}\0${resolveDevice(device)}`;
  let engine = engines.get(key);
  if (engine === undefined) {
    engine = VitEngine.load(weights, { config, device });
    // A failed load must not be cached: the next job should see the real error again (or succeed).
    engine.catch(() => engines.delete(key));
    engines.set(key, engine);
  }
  return engine;
}
