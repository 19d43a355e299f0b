/** Short messages at the top of the page (saved, conflict, errors); errors stay until clicked. */
import { h } from './dom.js';

let host: HTMLElement | null = null;

export type ToastKind = 'info' | 'ok' | 'warn' | 'error';

export function toast(message: string, kind: ToastKind = 'info', ms = kind === 'error' ? 0 : 3500): void {
  if (!host || !host.isConnected) {
    host = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(host);
  }
  const el = h('div', { class: `toast toast--${kind}`, 'data-testid': 'toast' }, message);
  el.addEventListener('click', () => el.remove());
  host.appendChild(el);
  while (host.children.length > 4) host.firstElementChild?.remove();
  if (ms > 0) setTimeout(() => el.remove(), ms);
}
