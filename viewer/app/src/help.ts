/** The `?` overlay: every keyboard shortcut, closed by `?`, Esc or a click outside. */
import { h } from './dom.js';
import { SHORTCUTS } from './keyboard.js';

let overlay: HTMLElement | null = null;

export function isHelpOpen(): boolean {
  return !!overlay?.isConnected;
}

export function closeHelp(): void {
  overlay?.remove();
  overlay = null;
}

export function toggleHelp(): void {
  if (isHelpOpen()) return closeHelp();
  const dialog = h('div', { class: 'help', role: 'dialog', 'aria-label': 'Keyboard shortcuts', 'data-testid': 'help' },
    h('div', { class: 'help__head' }, h('h2', null, 'Keyboard shortcuts'), h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close', onclick: closeHelp }, '×')),
    h('div', { class: 'help__cols' },
      SHORTCUTS.map(({ page, keys }) => h('section', null, h('h3', null, page),
        h('dl', null, keys.map(([k, what]) => [h('dt', null, k.split(' / ').flatMap((part, i) => [i ? ' / ' : '', h('kbd', null, part)])), h('dd', null, what)])),
      )),
    ),
    h('p', { class: 'muted small' }, 'Shortcuts are off while you type in a text field; Esc leaves it.'),
  );
  overlay = h('div', { class: 'help-backdrop', onclick: (e: MouseEvent) => e.target === overlay && closeHelp() }, dialog);
  document.body.appendChild(overlay);
}

document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && isHelpOpen()) closeHelp();
});
