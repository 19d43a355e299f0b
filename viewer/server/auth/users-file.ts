/**
 * The users file of `flashslide serve --users FILE`: one account per line, like htpasswd,
 *
 *   # comments and blank lines are kept
 *   alice:$scrypt$ln=15,r=8,p=3$<salt>$<hash>
 *
 * written by `flashslide serve-user add|remove` (never by hand needed, but readable and diffable).
 * Names are letters, digits and . _ @ - (no colon, no spaces), unique regardless of case, so
 * "alice" and "Alice" are never two reviewers. The server re-reads the file when it changes:
 * adding a reviewer needs no restart, and removing one ends their sessions.
 */
import { chmod, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { parsePasswordHash, PasswordHashError, type PasswordHash } from './passwords.js';

export const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export class UsersFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsersFileError';
  }
}

/** Why `name` cannot be a user name, or null. */
export function userNameProblem(name: string): string | null {
  if (USER_NAME.test(name)) return null;
  return `user name ${JSON.stringify(name.slice(0, 80))} must be 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit`;
}

/** name -> hash; throws UsersFileError naming the file and line of the first problem. */
export function parseUsers(text: string, path: string): Map<string, PasswordHash> {
  const users = new Map<string, PasswordHash>();
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${path}:${i + 1}`;
    const colon = line.indexOf(':');
    if (colon < 0) throw new UsersFileError(`${where}: expected NAME:HASH (lines are written by \`flashslide serve-user add NAME --users ${path}\`)`);
    const name = line.slice(0, colon);
    const problem = userNameProblem(name);
    if (problem !== null) throw new UsersFileError(`${where}: ${problem}`);
    if (seen.has(name.toLowerCase())) throw new UsersFileError(`${where}: user ${name} appears twice (names are compared without case)`);
    seen.add(name.toLowerCase());
    try {
      users.set(name, parsePasswordHash(line.slice(colon + 1)));
    } catch (err) {
      if (err instanceof PasswordHashError) throw new UsersFileError(`${where}: the password of ${name} is ${err.message}`);
      throw err;
    }
  });
  return users;
}

/** The file's text with `name`'s line replaced by (or appended as) name:hash; other lines kept as they are. */
export function withUser(text: string, name: string, phc: string): string {
  const lines = text === '' ? [HEADER] : text.replace(/\n$/, '').split('\n');
  const entry = `${name}:${phc}`;
  const at = lines.findIndex((l) => lineName(l)?.toLowerCase() === name.toLowerCase());
  if (at >= 0) lines[at] = entry;
  else lines.push(entry);
  return `${lines.join('\n')}\n`;
}

/** The file's text without `name`'s line; null when there is no such user. */
export function withoutUser(text: string, name: string): string | null {
  const lines = text.replace(/\n$/, '').split('\n');
  const kept = lines.filter((l) => lineName(l)?.toLowerCase() !== name.toLowerCase());
  return kept.length === lines.length ? null : `${kept.join('\n')}\n`;
}

/** User names in the file, in file order (for `serve-user list`). */
export function userNames(text: string): string[] {
  return text.split(/\r?\n/).map(lineName).filter((n): n is string => n !== null);
}

const HEADER = '# flashslide review server accounts: NAME:scrypt hash, one per line (`flashslide serve-user add|remove NAME --users FILE`)';

function lineName(line: string): string | null {
  const t = line.trim();
  if (t === '' || t.startsWith('#')) return null;
  const colon = t.indexOf(':');
  return colon < 0 ? null : t.slice(0, colon);
}

/** The file's text, '' when it does not exist yet. */
export async function readUsersText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/**
 * Replaces the file atomically (temp file + rename: the server never reads half a file), readable
 * by its owner only: the hashes are slow to crack, not impossible.
 */
export async function writeUsersText(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await chmod(tmp, 0o600);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** The accounts a running server checks sign-ins against, re-read when the file changes. */
export class UsersFile {
  private users = new Map<string, PasswordHash>();
  private stamp = '';
  private checkedAt = 0;
  private checking: Promise<void> | null = null;

  /**
   * @param onReloadProblem told when a changed file cannot be read or parsed; the accounts read
   *   before stay in force (a half-edited file must not lock everyone out, or let anyone in).
   */
  constructor(
    readonly path: string,
    private readonly onReloadProblem: (message: string) => void,
    private readonly checkEveryMs = 2000,
  ) {}

  /** Reads the file at start; throws UsersFileError when it is missing, unreadable, malformed or empty. */
  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
      this.stamp = await this.fileStamp();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new UsersFileError(`no users file at ${this.path}: add the first reviewer with \`flashslide serve-user add NAME --users ${this.path}\``);
      throw new UsersFileError(`cannot read the users file ${this.path}: ${(err as Error).message}`);
    }
    const users = parseUsers(text, this.path);
    if (users.size === 0) throw new UsersFileError(`the users file ${this.path} has no accounts: add one with \`flashslide serve-user add NAME --users ${this.path}\``);
    this.users = users;
    this.checkedAt = Date.now();
  }

  get size(): number {
    return this.users.size;
  }

  /**
   * The account of `name` as last read, after re-reading the file if it may have changed. Names
   * match without case (they are unique that way); the account's own spelling is returned.
   */
  async lookup(name: string): Promise<{ name: string; hash: PasswordHash } | undefined> {
    await this.refresh();
    const exact = this.users.get(name);
    if (exact !== undefined) return { name, hash: exact };
    const lower = name.toLowerCase();
    for (const [n, hash] of this.users) if (n.toLowerCase() === lower) return { name: n, hash };
    return undefined;
  }

  /** Whether `name` still has an account (as last read; schedules a re-read when due). */
  has(name: string): boolean {
    if (Date.now() - this.checkedAt >= this.checkEveryMs) void this.refresh();
    return this.users.has(name);
  }

  private async fileStamp(): Promise<string> {
    const s = await stat(this.path);
    return `${s.ino}/${s.size}/${s.mtimeMs}`;
  }

  private refresh(): Promise<void> {
    if (Date.now() - this.checkedAt < this.checkEveryMs) return Promise.resolve();
    this.checking ??= (async () => {
      try {
        const stamp = await this.fileStamp();
        if (stamp === this.stamp) return;
        const users = parseUsers(await readFile(this.path, 'utf8'), this.path);
        this.users = users;
        this.stamp = stamp;
      } catch (err) {
        this.onReloadProblem(`the users file ${this.path} changed but cannot be used, keeping the accounts read before: ${(err as Error).message}`);
        // Do not repeat the message every request: try again after the next change.
        this.stamp = await this.fileStamp().catch(() => this.stamp);
      } finally {
        this.checkedAt = Date.now();
        this.checking = null;
      }
    })();
    return this.checking;
  }
}
