/**
 * Whether a listen address keeps the server on this machine. Beyond loopback anyone on the
 * network could read slides (patient data) and record verdicts, so the server refuses such a bind
 * unless authentication is configured (InsecureBindError says how).
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { AuthMode } from '../options.js';

/** 127.0.0.0/8, ::1 (also IPv4-mapped ::ffff:127.x.x.x) and `localhost`; anything else is the network. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) {
    const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    if (mapped?.[1] !== undefined) return mapped[1].startsWith('127.');
    // Every spelling of ::1 (0:0:0:0:0:0:0:1, ::0:1, ...) has only zero groups before the final 1.
    return /^[0:]*:0*1$/.test(h);
  }
  return false;
}

export class InsecureBindError extends Error {
  constructor(readonly host: string) {
    super(
      `refusing to listen on ${host} without authentication: anyone who can reach this machine could read the slides and record verdicts. ` +
        'Configure sign-in with --users FILE (named accounts; add one with `flashslide serve-user add NAME --users FILE`) ' +
        'or --auth-token-file FILE (one shared secret, also FLASHSLIDE_SERVE_TOKEN; make one with `openssl rand -base64 32`), ' +
        'or listen on this machine only (--host 127.0.0.1) and reach it through an SSH tunnel',
    );
    this.name = 'InsecureBindError';
  }
}

/** Throws InsecureBindError when `host` reaches beyond this machine and no authentication is on. */
export function checkBind(host: string, auth: AuthMode): void {
  if (auth.mode === 'none' && !isLoopbackHost(host)) throw new InsecureBindError(host);
}
