/**
 * Page shortcuts: one keydown listener per page, keyed by KeyboardEvent.key. Quiet while the
 * user types (inputs, the note field) and when Ctrl/Cmd/Alt is held (browser shortcuts win).
 */
import { isTypingTarget } from './dom.js';

export type KeyMap = Record<string, (e: KeyboardEvent) => void>;

export function bindKeys(map: KeyMap): () => void {
  const onKey = (e: KeyboardEvent): void => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    if (isTypingTarget(e.target)) {
      // Escape leaves a text field so the shortcuts work again.
      if (e.key === 'Escape' && e.target instanceof HTMLElement) e.target.blur();
      return;
    }
    // Enter and Space on a focused button or link do what they do there.
    if ((e.key === 'Enter' || e.key === ' ') && e.target instanceof Element && e.target.closest('button, a, summary, select')) return;
    // While the help is open only `?` (which closes it) acts.
    if (e.key !== '?' && document.querySelector('.help-backdrop')) return;
    const action = map[e.key];
    if (!action) return;
    e.preventDefault();
    action(e);
  };
  document.addEventListener('keydown', onKey);
  return () => document.removeEventListener('keydown', onKey);
}

/** The shortcuts as the help overlay and docs/viewer.md list them. */
export const SHORTCUTS: { page: string; keys: [string, string][] }[] = [
  {
    page: 'Slide',
    keys: [
      ['n / p', 'next / previous region (flies to it)'],
      ['c', 'confirm the current region as anomalous'],
      ['r', 'reject it (not an anomaly)'],
      ['u', 'unsure'],
      ['e', 'edit the note of the current region'],
      ['h', 'show / hide the heatmap'],
      ['m', 'next colour map'],
      ['] / [', 'next / previous slide of the worklist'],
      ['+ / −', 'zoom in / out'],
      ['arrows', 'pan'],
      ['0', 'whole slide'],
      ['f', 'full screen'],
      ['Esc', 'leave a text field, close this help'],
      ['b', 'back to the worklist'],
    ],
  },
  {
    page: 'Worklist',
    keys: [
      ['/', 'filter'],
      ['j / k', 'move the selection'],
      ['Enter', 'open the selected slide'],
    ],
  },
  { page: 'Everywhere', keys: [['?', 'this help']] },
];
