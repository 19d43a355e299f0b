/**
 * Sending slides to the queue: a path inside the server's slide folders (POST /api/submit) or a
 * file from this computer (PUT /api/upload). Without a queue the server answers 503 and the
 * form shows its message.
 */
import type { SubmitResponse } from '../../server/api-types.js';
import { api, errorMessage } from './api.js';
import { h } from './dom.js';

const SUBMITTED: Record<SubmitResponse['submitted'], string> = {
  queued: 'queued',
  'already-queued': 'already in the queue',
  'already-done': 'already analysed',
  requeued: 'queued again',
};

export function submitPanel(): { element: HTMLElement; setQueue(queue: boolean): void } {
  const message = h('p', { class: 'submit__message', role: 'status', 'data-testid': 'submit-message' });
  const say = (text: string, kind: 'ok' | 'error' | 'info'): void => {
    message.textContent = text;
    message.dataset.kind = kind;
  };
  const done = (r: SubmitResponse): void => say(`${r.name}: ${SUBMITTED[r.submitted] ?? r.submitted}.`, 'ok');

  const path = h('input', { type: 'text', id: 'submit-path', placeholder: '/slides/case-0042/block-A.svs', 'aria-label': 'Slide path on the server', spellcheck: 'false' });
  const pathForm = h('form', { class: 'submit__row' },
    h('label', { for: 'submit-path' }, 'Path on the server'), path, h('button', { type: 'submit', class: 'btn btn--primary' }, 'Analyse'));
  pathForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const p = path.value.trim();
    if (!p) return say('Type the path of a slide file inside the server\'s slide folders.', 'info');
    say('Submitting…', 'info');
    api.submit(p).then((r) => { done(r); path.value = ''; }, (err) => say(errorMessage(err), 'error'));
  });

  const file = h('input', { type: 'file', id: 'submit-file', 'aria-label': 'Slide file to upload', accept: '.svs,.tif,.tiff,.ndpi,.mrxs,.scn,.bif,.vms,.vmu,.svslide,.dcm' });
  const progress = h('progress', { max: 1, value: 0, hidden: true });
  const uploadForm = h('form', { class: 'submit__row' },
    h('label', { for: 'submit-file' }, 'Upload a file'), file, h('button', { type: 'submit', class: 'btn' }, 'Upload'), progress);
  uploadForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const f = file.files?.[0];
    if (!f) return say('Choose a slide file first.', 'info');
    progress.hidden = false;
    progress.value = 0;
    say(`Uploading ${f.name}…`, 'info');
    api.upload(f, (x) => { progress.value = x; }).then(
      (r) => { done(r); file.value = ''; },
      (err) => say(errorMessage(err), 'error'),
    ).finally(() => { progress.hidden = true; });
  });

  const queueNote = h('span', { class: 'muted small' });
  const element = h('details', { class: 'panel submit', id: 'submit' },
    h('summary', null, h('h2', null, 'Submit slides'), queueNote),
    pathForm, uploadForm, message);
  return {
    element,
    setQueue(queue) {
      queueNote.textContent = queue ? '' : ' — no queue on this server: submission is off';
      element.dataset.queue = String(queue);
    },
  };
}
