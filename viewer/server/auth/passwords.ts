/**
 * Password hashes for the users file: scrypt (Node's crypto, memory-hard, no native dependency)
 * with a random 16-byte salt, stored with its parameters in the PHC string format
 *
 *   $scrypt$ln=15,r=8,p=3$<salt, base64 without padding>$<32-byte key, base64 without padding>
 *
 * so the cost can be raised later without invalidating existing entries. Verification compares
 * with timingSafeEqual, and runs scrypt even for unknown users (dummyVerify) so the answer time
 * does not tell which names exist.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. */
  ln: number;
  r: number;
  p: number;
}

/**
 * N = 2^15, r = 8, p = 3: one of OWASP's equivalent minimum settings for scrypt (Password Storage
 * Cheat Sheet), chosen over N = 2^17, p = 1 because it needs 32 MiB per check instead of 128 MiB:
 * a few sign-ins at once stay cheap for a server that also renders tiles.
 */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = { ln: 15, r: 8, p: 3 };
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Accepted when reading a file: enough to never be trivial, low enough that a hostile file cannot make one check take minutes. */
const LIMITS = { ln: [14, 20], r: [1, 32], p: [1, 16] } as const;

export class PasswordHashError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PasswordHashError';
  }
}

export interface PasswordHash {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

function derive(password: string, salt: Buffer, params: ScryptParams, keyLength: number): Promise<Buffer> {
  const N = 2 ** params.ln;
  // Node refuses scrypt above maxmem (32 MiB by default); 128 * N * r is what it needs, plus slack.
  const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 128 * N * params.r + 16 * 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');

/** A new PHC string for `password`. */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, params, KEY_BYTES);
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

/** Parses a PHC scrypt string; PasswordHashError says what is wrong with it. */
export function parsePasswordHash(phc: string): PasswordHash {
  const m = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{16,})\$([A-Za-z0-9+/]{22,})$/.exec(phc);
  if (m === null) throw new PasswordHashError('not a scrypt hash of the form $scrypt$ln=15,r=8,p=3$SALT$HASH (make one with `flashslide serve-user add`)');
  const params: ScryptParams = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  for (const k of ['ln', 'r', 'p'] as const) {
    const [lo, hi] = LIMITS[k];
    if (params[k] < lo || params[k] > hi) throw new PasswordHashError(`scrypt parameter ${k}=${params[k]} is outside ${lo}..${hi}`);
  }
  const salt = Buffer.from(m[4] as string, 'base64');
  const key = Buffer.from(m[5] as string, 'base64');
  if (salt.length < SALT_BYTES) throw new PasswordHashError(`the salt has ${salt.length} bytes; at least ${SALT_BYTES}`);
  if (key.length < 16 || key.length > 64) throw new PasswordHashError(`the hash has ${key.length} bytes; expected 16..64`);
  return { params, salt, key };
}

/** Whether `password` matches `hash` (constant-time comparison of the derived keys). */
export async function verifyPassword(password: string, hash: PasswordHash): Promise<boolean> {
  const key = await derive(password, hash.salt, hash.params, hash.key.length);
  return timingSafeEqual(key, hash.key);
}

let dummy: Promise<PasswordHash> | null = null;

/** The same work as verifyPassword, for a name that has no account; always false. */
export async function dummyVerify(password: string): Promise<false> {
  dummy ??= hashPassword('no such user').then(parsePasswordHash);
  await verifyPassword(password, await dummy);
  return false;
}

/** What a new password must have; the message says what is missing. null: acceptable. */
export function passwordProblem(password: string): string | null {
  if (password.length < MIN_PASSWORD_LENGTH) return `the password has ${password.length} characters; use at least ${MIN_PASSWORD_LENGTH} (a passphrase of a few words is easy to remember)`;
  if (password.length > 1024) return 'the password is longer than 1024 characters';
  if (/[\u0000-\u001f\u007f]/.test(password)) return 'the password contains control characters (a stray newline?)';
  return null;
}

export const MIN_PASSWORD_LENGTH = 12;
