/**
 * The sign-in page, shown when the server has authentication on and this browser has no session
 * (first visit, session ended, signed out). Named accounts sign in with name and password; a
 * server with one shared token asks for the token. On success the server sets an HttpOnly
 * session cookie (the page never sees it) and the app shows the page that was asked for.
 */
import type { SessionInfo } from '../../server/api-types.js';
import { api, ApiRequestError, errorMessage } from './api.js';
import { h, replaceChildren } from './dom.js';
import { hooks } from './hooks.js';
import { setSession } from './session.js';

export function mountLogin(root: HTMLElement, mode: SessionInfo['auth'], onSignedIn: () => void, why?: string): () => void {
  hooks.page = 'login';
  document.title = 'Sign in · flashslide review';
  const tokenMode = mode === 'token';
  const user = h('input', { type: 'text', id: 'login-user', name: 'username', autocomplete: 'username', required: true, maxlength: 64, spellcheck: 'false', autocapitalize: 'none' });
  const secret = h('input', { type: 'password', id: 'login-secret', name: tokenMode ? 'token' : 'password', autocomplete: tokenMode ? 'off' : 'current-password', required: true, maxlength: 1024 });
  const message = h('p', { class: 'login__message', role: 'alert', 'data-testid': 'login-message' }, why ?? '');
  const submit = h('button', { type: 'submit', class: 'btn btn--primary login__submit' }, 'Sign in');
  const form = h('form', { class: 'login panel', 'data-testid': 'login-form', 'aria-labelledby': 'login-title' },
    h('div', { class: 'brand login__brand' }, 'flashslide', h('span', null, 'review')),
    h('h1', { id: 'login-title' }, 'Sign in'),
    h('p', { class: 'muted small' }, tokenMode
      ? 'This server is shared with an access token. Ask whoever runs it for the token.'
      : 'Verdicts you record are signed with your name.'),
    tokenMode ? null : h('label', { for: 'login-user' }, 'User name'),
    tokenMode ? null : user,
    h('label', { for: 'login-secret' }, tokenMode ? 'Access token' : 'Password'),
    secret,
    message,
    submit,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    message.textContent = '';
    submit.disabled = true;
    const body = tokenMode ? { token: secret.value } : { user: user.value.trim(), password: secret.value };
    api.login(body).then(
      (info) => {
        setSession(info);
        onSignedIn();
      },
      (err) => {
        submit.disabled = false;
        secret.value = '';
        secret.focus();
        message.textContent = err instanceof ApiRequestError && err.code === 'bad-credentials'
          ? (tokenMode ? 'That is not the access token.' : 'Wrong user name or password.')
          : errorMessage(err);
      },
    );
  });
  replaceChildren(root, h('main', { class: 'login-page' }, form));
  (tokenMode ? secret : user).focus();
  return () => undefined;
}
