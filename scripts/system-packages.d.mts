// Types of system-packages.mjs for the TypeScript tests that import it.
export type NeededFor = 'build' | 'runtime-optional' | 'test';
export interface Probe {
  command?: string;
  file?: string[];
  pkgConfig?: string;
  python?: string;
}
export interface SystemPackage {
  name: string;
  neededFor: NeededFor;
  why: string;
  probe: Probe;
  /** What a machine that only runs the build needs in its place (the image's runtime stage). */
  runtime?: string[];
}
/** A package as one purpose checks it: `required` (else missing it only warns). */
export interface CheckedPackage extends SystemPackage {
  required: boolean;
}
export interface Facts {
  packages: readonly CheckedPackage[];
  present: ReadonlySet<string>;
  isRoot: boolean;
  passwordlessSudo: boolean;
  hasApt: boolean;
  noApt: boolean;
  /** Names apt has no install candidate for (known once apt-get update ran). */
  unavailable?: ReadonlySet<string>;
}
export interface Decision {
  action: 'none' | 'install' | 'instruct';
  missing: CheckedPackage[];
  toInstall: CheckedPackage[];
  install: string | null;
  reason: string | null;
  stop: boolean;
}
export const SYSTEM_PACKAGES: readonly SystemPackage[];
export function packagesFor(purpose: 'start' | 'test' | 'build'): CheckedPackage[];
export function installCommand(names: readonly string[], isRoot: boolean): string;
export function decide(facts: Facts): Decision;
export function message(decision: Decision, facts?: { hasApt?: boolean }): string;
/** Names apt-cache policy shows no install candidate for (unknown to the apt sources). */
export function withoutCandidate(names: readonly string[]): Set<string>;
export function survey(packages: readonly CheckedPackage[], env?: NodeJS.ProcessEnv): Facts;
export function ensureSystemPackages(
  purpose: 'start' | 'test',
  options?: { log?: (line: string) => void; installOk?: boolean },
): { ok: boolean; installed: string[] };
/** The addon build's check: true when it can compile; else it logged the message. Never installs. */
export function checkBuildPackages(options?: { skip?: readonly string[]; log?: (line: string) => void }): boolean;
export function runtimePackages(): string[];
