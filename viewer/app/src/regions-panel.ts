/**
 * The regions panel: review progress, the ranked list of anomalous regions with their verdicts,
 * and the current region's card (scores, area, verdict buttons, note, reviewer). It renders
 * state and reports clicks; the slide page owns the state and the shortcuts.
 */
import type { RegionItem, Review, Verdict } from '../../server/api-types.js';
import { h, replaceChildren } from './dom.js';
import { fmtArea, fmtInt, fmtScore, fmtWhen } from './format.js';

export interface RegionsPanelEvents {
  select(index: number): void;
  verdict(verdict: Verdict): void;
  reviewer(name: string): void;
  step(delta: 1 | -1): void;
}

export interface RegionsPanel {
  element: HTMLElement;
  render(regions: RegionItem[] | null, current: number, review: Review | null, why?: string): void;
  /** The note typed for the current region. */
  note(): string;
  focusNote(): void;
}

const VERDICT_LABEL: Record<Verdict, string> = { confirmed: 'Confirmed', rejected: 'Rejected', unsure: 'Unsure' };
const VERDICT_KEY: Record<Verdict, string> = { confirmed: 'c', rejected: 'r', unsure: 'u' };

export function verdictChip(v: Verdict | undefined): HTMLElement {
  return v
    ? h('span', { class: `chip chip--${v}`, 'data-verdict': v }, VERDICT_LABEL[v])
    : h('span', { class: 'chip chip--none' }, 'open');
}

/** typed: the name field, filled with the last name typed; signedIn: the account verdicts are recorded under. */
export type ReviewerIdentity = { typed: string } | { signedIn: string };

export function regionsPanel(identity: ReviewerIdentity, on: RegionsPanelEvents): RegionsPanel {
  const progressText = h('span', { class: 'progress-text', 'data-testid': 'review-progress' });
  const progressBar = h('div', { class: 'bar__fill' });
  const list = h('ol', { class: 'region-list', 'data-testid': 'region-list' });
  const card = h('div', { class: 'region-card', 'data-testid': 'region-card' });
  const note = h('textarea', { id: 'region-note', rows: 2, placeholder: 'Note for this region (sent with the verdict)', 'aria-label': 'Note' });
  let reviewerRow: HTMLElement;
  if ('signedIn' in identity) {
    reviewerRow = h('div', { class: 'reviewer-row' }, h('span', { class: 'reviewer-row__label' }, 'Reviewer'),
      h('strong', { id: 'reviewer', 'data-testid': 'reviewer-name', title: 'You are signed in: verdicts are recorded under this name' }, identity.signedIn));
  } else {
    const reviewer = h('input', { id: 'reviewer', type: 'text', placeholder: 'Your name', value: identity.typed, autocomplete: 'name', 'aria-label': 'Reviewer' });
    reviewer.addEventListener('change', () => on.reviewer(reviewer.value.trim()));
    reviewerRow = h('div', { class: 'reviewer-row' }, h('label', { for: 'reviewer' }, 'Reviewer'), reviewer);
  }
  const verdictButtons = (['confirmed', 'rejected', 'unsure'] as const).map((v) =>
    h('button', { type: 'button', class: `verdict-btn verdict-btn--${v}`, 'data-verdict': v, onclick: () => on.verdict(v) }, VERDICT_LABEL[v], h('kbd', null, VERDICT_KEY[v])),
  );
  const stepper = h('div', { class: 'stepper' },
    h('button', { type: 'button', class: 'btn', onclick: () => on.step(-1), title: 'Previous region (p)' }, '‹ prev', h('kbd', null, 'p')),
    h('button', { type: 'button', class: 'btn', onclick: () => on.step(1), title: 'Next region (n)' }, 'next ›', h('kbd', null, 'n')),
  );
  const empty = h('p', { class: 'muted small' });
  const element = h('section', { class: 'panel regions', 'aria-label': 'Regions' },
    h('div', { class: 'panel__head' }, h('h2', null, 'Regions'), progressText),
    h('div', { class: 'bar' }, progressBar),
    empty,
    card,
    list,
  );
  let noteFor: string | null = null;

  return {
    element,
    note: () => note.value.trim(),
    focusNote: () => note.focus(),
    render(regions, current, review, why) {
      const total = regions?.length ?? 0;
      const reviewed = regions ? regions.filter((r) => review?.regions[r.id]).length : 0;
      progressText.textContent = regions && total ? `${reviewed} of ${total} reviewed` : '';
      progressBar.parentElement!.hidden = !total;
      progressBar.style.width = total ? `${(100 * reviewed) / total}%` : '0';
      empty.hidden = !!regions && total > 0;
      empty.textContent = why ?? (regions ? 'No anomalous regions: no cell scored above the method threshold.' : 'Regions appear when the analysis finishes.');

      replaceChildren(list, (regions ?? []).map((r, i) => {
        const v = review?.regions[r.id]?.verdict;
        const li = h('li', { class: `region-row${i === current ? ' is-current' : ''}`, 'data-region': r.id, tabindex: -1 },
          h('span', { class: 'region-row__rank' }, `#${r.rank}`),
          h('span', { class: 'region-row__score', title: 'highest cell score' }, fmtScore(r.scoreMax)),
          h('span', { class: 'region-row__area' }, fmtArea(r.areaUm2)),
          verdictChip(v),
        );
        li.addEventListener('click', () => on.select(i));
        return li;
      }));
      list.querySelector('.is-current')?.scrollIntoView({ block: 'nearest' });

      const r = regions?.[current];
      card.hidden = !r;
      if (!r) return;
      const rr = review?.regions[r.id];
      // Keep what the user is typing unless the region changed.
      if (noteFor !== r.id) {
        note.value = rr?.note ?? '';
        noteFor = r.id;
      }
      for (const b of verdictButtons) b.classList.toggle('is-active', b.dataset.verdict === rr?.verdict);
      replaceChildren(card,
        h('div', { class: 'region-card__head' }, h('strong', null, `Region #${r.rank}`), h('span', { class: 'muted' }, ` of ${total}`), verdictChip(rr?.verdict)),
        h('dl', { class: 'kv kv--tight' },
          h('dt', null, 'score max / mean'), h('dd', null, `${fmtScore(r.scoreMax)} / ${fmtScore(r.scoreMean)}`),
          h('dt', null, 'area'), h('dd', null, `${fmtArea(r.areaUm2)} · ${fmtInt(r.cells)} cells`),
        ),
        h('div', { class: 'verdicts' }, verdictButtons),
        note,
        reviewerRow,
        rr ? h('p', { class: 'muted small', 'data-testid': 'verdict-line' },
          `${VERDICT_LABEL[rr.verdict]} by ${rr.reviewer || 'anonymous'}, ${fmtWhen(rr.at)}${rr.history.length ? ` · ${rr.history.length} earlier` : ''}`) : null,
        stepper,
      );
    },
  };
}
