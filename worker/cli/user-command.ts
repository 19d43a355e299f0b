/**
 * `flashslide serve-user`: the accounts of `flashslide serve --users FILE`.
 *
 *   serve-user add NAME --users FILE      add NAME or change their password (asked twice on a
 *                                         terminal, else the first line of stdin)
 *   serve-user remove NAME --users FILE   a running server ends NAME's sessions within seconds
 *   serve-user list --users FILE
 *   serve-user hash NAME                  print NAME:HASH for a users file kept elsewhere
 *                                         (e.g. one mounted read-only into a container)
 *
 * Passwords are never taken as arguments: they would land in the shell history and in `ps`.
 */
import { resolve } from 'node:path';
import { UsageError, parse, stringFlag } from './args.js';
import { hashPassword, passwordProblem } from '../../viewer/server/auth/passwords.js';
import { parseUsers, readUsersText, userNameProblem, userNames, withUser, withoutUser, writeUsersText, UsersFileError } from '../../viewer/server/auth/users-file.js';
import { printable } from '../util/printable.js';

const USAGE = `usage: flashslide serve-user add|remove NAME --users FILE
       flashslide serve-user list --users FILE
       flashslide serve-user hash NAME

Accounts of the review server (flashslide serve --users FILE): one NAME:scrypt-hash line each,
the file written atomically and readable by its owner only. A running server re-reads it when it
changes: a new account can sign in at once, a removed one is signed out.

  add NAME      add NAME, or set a new password for NAME; the password (at least 12 characters)
                is asked twice on a terminal, or read as the first line of stdin:
                  printf '%s\\n' "$PASSWORD" | flashslide serve-user add alice --users users.txt
  remove NAME   delete NAME's account
  list          the account names
  hash NAME     print the NAME:HASH line without writing a file (password as for add)

Names: 1-64 letters, digits, '.', '_', '@', '-'; unique regardless of case.`;

export async function userCommand(args: string[]): Promise<number> {
  const p = parse(args, { users: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  if (p.values['help'] === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [action, name, ...extra] = p.positionals;
  if (action === undefined) throw new UsageError(`serve-user needs an action\n${USAGE}`);
  if (extra.length > 0) throw new UsageError(`serve-user ${printable(action)}: unexpected ${printable(extra.join(' '))} (one NAME at a time)`);
  const usersFlag = stringFlag(p.values, 'users');

  const needName = (): string => {
    if (name === undefined) throw new UsageError(`serve-user ${action} needs a NAME`);
    const problem = userNameProblem(name);
    if (problem !== null) throw new UsageError(problem);
    return name;
  };
  const needFile = (): string => {
    if (usersFlag === undefined) throw new UsageError(`serve-user ${action} needs --users FILE (the file flashslide serve --users reads)`);
    return resolve(usersFlag);
  };
  /** The file's current text, refused when it is malformed (writing would keep the damage). */
  const current = async (file: string): Promise<string> => {
    const text = await readUsersText(file);
    try {
      parseUsers(text, file);
    } catch (err) {
      if (err instanceof UsersFileError) throw new UsageError(`${err.message}; fix or remove that line first`);
      throw err;
    }
    return text;
  };

  switch (action) {
    case 'add': {
      const user = needName();
      const file = needFile();
      const text = await current(file);
      const existed = userNames(text).some((n) => n.toLowerCase() === user.toLowerCase());
      const password = await readNewPassword(user);
      await writeUsersText(file, withUser(text, user, await hashPassword(password)));
      process.stdout.write(`${existed ? 'changed the password of' : 'added'} ${user} in ${printable(file)}\n`);
      return 0;
    }
    case 'remove': {
      const user = needName();
      const file = needFile();
      const next = withoutUser(await current(file), user);
      if (next === null) throw new UsageError(`${printable(file)} has no user ${user}`);
      await writeUsersText(file, next);
      process.stdout.write(`removed ${user} from ${printable(file)}\n`);
      return 0;
    }
    case 'list': {
      if (name !== undefined) throw new UsageError('serve-user list takes no NAME');
      for (const n of userNames(await current(needFile()))) process.stdout.write(`${n}\n`);
      return 0;
    }
    case 'hash': {
      const user = needName();
      if (usersFlag !== undefined) throw new UsageError('serve-user hash prints the line and writes no file: leave out --users (or use add)');
      const password = await readNewPassword(user);
      process.stdout.write(`${user}:${await hashPassword(password)}\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown serve-user action "${printable(action)}"\n${USAGE}`);
  }
}

/** The new password: asked twice without echo on a terminal, else the first line of stdin. */
async function readNewPassword(user: string): Promise<string> {
  let password: string;
  if (process.stdin.isTTY) {
    password = await promptHidden(`New password for ${user}: `);
    const again = await promptHidden('Again: ');
    if (again !== password) throw new UsageError('the two passwords differ; nothing was changed');
  } else {
    password = firstLine(await readStdin());
  }
  const problem = passwordProblem(password);
  if (problem !== null) throw new UsageError(`${problem}; nothing was changed`);
  return password;
}

function firstLine(text: string): string {
  const nl = text.search(/\r?\n/);
  return nl < 0 ? text : text.slice(0, nl);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const b = chunk as Buffer;
    chunks.push(b);
    size += b.length;
    if (size > 64 * 1024) throw new UsageError('stdin is longer than 64 KiB: pipe just the password');
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads one line from the terminal with echo off (raw mode); Ctrl-C aborts. */
function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  return new Promise((resolvePassword, reject) => {
    let typed = '';
    const finish = (err: Error | null): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err !== null) reject(err);
      else resolvePassword(typed);
    };
    const onData = (data: Buffer): void => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish(null);
        if (ch === '\u0003') return finish(new UsageError('cancelled; nothing was changed'));
        if (ch === '\u007f' || ch === '\b') typed = [...typed].slice(0, -1).join('');
        else if (ch >= ' ') typed += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}
