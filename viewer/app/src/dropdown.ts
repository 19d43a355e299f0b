/**
 * A button that opens a panel under it (the export menus). The panel closes on a second click,
 * a click outside, Esc, or a click on one of its links (a download has started: the menu has
 * done its job). Document listeners exist only while it is open, so a closed menu costs nothing
 * and a page that unmounts leaves none behind once it calls close().
 */
import { h, type Children } from './dom.js';
import { icon, type IconName } from './icons.js';

export interface Dropdown {
  element: HTMLElement;
  toggle: HTMLButtonElement;
  panel: HTMLElement;
  open(): void;
  close(): void;
  /** Off: the button is disabled and `why` is its tooltip (on the wrapper too, as a disabled button shows none in some browsers). */
  setEnabled(enabled: boolean, why?: string): void;
}

let serial = 0;

export function dropdown(opts: { label: string; icon?: IconName; title: string; testid: string; align?: 'left' | 'right' }, ...content: Children[]): Dropdown {
  const panelId = `dropdown-${++serial}`;
  const toggle = h('button', {
    type: 'button', class: 'btn dropdown__toggle', title: opts.title, 'aria-haspopup': 'true', 'aria-expanded': 'false', 'aria-controls': panelId, 'data-testid': opts.testid,
  }, opts.icon ? icon(opts.icon) : null, opts.label, h('span', { class: 'dropdown__caret', 'aria-hidden': 'true' }, '▾'));
  const panel = h('div', { class: `dropdown__panel dropdown__panel--${opts.align ?? 'right'}`, id: panelId, hidden: true, 'data-testid': `${opts.testid}-panel` }, content);
  const element = h('div', { class: 'dropdown' }, toggle, panel);

  const onPointer = (e: PointerEvent): void => {
    if (!element.contains(e.target as Node)) close();
  };
  const onKey = (e: KeyboardEvent): void => {
    if (e.key !== 'Escape') return;
    // Esc is the menu's: the page's shortcuts and the help overlay do not see it.
    e.stopPropagation();
    close();
    toggle.focus();
  };

  function open(): void {
    if (!panel.hidden || toggle.disabled) return;
    panel.hidden = false;
    toggle.setAttribute('aria-expanded', 'true');
    element.classList.add('is-open');
    document.addEventListener('pointerdown', onPointer, true);
    document.addEventListener('keydown', onKey, true);
  }

  function close(): void {
    if (panel.hidden) return;
    panel.hidden = true;
    toggle.setAttribute('aria-expanded', 'false');
    element.classList.remove('is-open');
    document.removeEventListener('pointerdown', onPointer, true);
    document.removeEventListener('keydown', onKey, true);
  }

  toggle.addEventListener('click', () => (panel.hidden ? open() : close()));
  panel.addEventListener('click', (e) => {
    // The link's default action (the download) still runs after this handler.
    const link = (e.target as Element).closest('a');
    if (link?.hasAttribute('href')) close();
  });

  return {
    element,
    toggle,
    panel,
    open,
    close,
    setEnabled(enabled, why) {
      if (!enabled) close();
      toggle.disabled = !enabled;
      toggle.title = enabled ? opts.title : (why ?? opts.title);
      if (enabled || !why) element.removeAttribute('title');
      else element.title = why;
    },
  };
}
