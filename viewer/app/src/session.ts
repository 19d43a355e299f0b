/**
 * Who is signed in, as the server said (GET /api/session), for the whole page: the topbars show
 * the name with a sign-out button, the regions panel shows it as the reviewer (the server records
 * verdicts under it), and api.ts sends the session's CSRF token with every write.
 */
import type { SessionInfo } from '../../server/api-types.js';
import { api, errorMessage, setCsrfToken } from './api.js';
import { h } from './dom.js';
import { toast } from './toast.js';

let current: SessionInfo = { auth: 'none', user: null, csrf: null };

export function session(): SessionInfo {
  return current;
}

export function setSession(info: SessionInfo): void {
  current = info;
  setCsrfToken(info.csrf);
}

/** Whether the page must show the sign-in form before anything else. */
export function needsSignIn(info: SessionInfo = current): boolean {
  return info.auth !== 'none' && info.user === null;
}

/** The signed-in name, or null without authentication (then the reviewer types a name). */
export function signedInUser(): string | null {
  return current.auth === 'none' ? null : current.user;
}

/**
 * The topbar's "name · Sign out", or nothing without authentication. Signing out reloads the
 * page: nothing read while signed in (slide names, verdicts) stays in its memory.
 */
export function accountBadge(): HTMLElement | null {
  const user = signedInUser();
  if (user === null) return null;
  const signOut = h('button', { type: 'button', class: 'btn btn--ghost', 'data-testid': 'sign-out' }, 'Sign out');
  signOut.addEventListener('click', () => {
    api.logout().then(
      (info) => {
        setSession(info);
        location.reload();
      },
      (err) => toast(`Could not sign out: ${errorMessage(err)}`, 'error'),
    );
  });
  return h('span', { class: 'account', 'data-testid': 'account' }, h('span', { class: 'account__name', title: 'Signed in: verdicts are recorded under this name' }, user), signOut);
}
