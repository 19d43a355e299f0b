// Types of system-packages.mjs for the TypeScript tests that import it.
export interface SystemPackage {
  name: string;
  need: 'start' | 'test';
  why: string;
  probe: { command?: string; file?: string[]; pkgConfig?: string };
}
export interface Facts {
  packages: readonly SystemPackage[];
  present: ReadonlySet<string>;
  isRoot: boolean;
  passwordlessSudo: boolean;
  hasApt: boolean;
  noApt: boolean;
}
export interface Decision {
  action: 'none' | 'install' | 'instruct';
  missing: SystemPackage[];
  install: string | null;
  reason: string | null;
}
export const SYSTEM_PACKAGES: readonly SystemPackage[];
export function packagesFor(purpose: 'start' | 'test'): SystemPackage[];
export function decide(facts: Facts): Decision;
export function survey(packages: readonly SystemPackage[]): Facts;
export function ensureSystemPackages(purpose: 'start' | 'test', log?: (line: string) => void): boolean;
