/**
 * The review app's entry: asks the server whether a sign-in is needed (GET /api/session), then
 * routes between the worklist and a slide page (history routing). When the server has
 * authentication on and there is no session, or the session ends later (any request answering
 * 401), the sign-in form takes the page; after signing in, the page that was asked for shows.
 */
import './styles.css';
import { api, errorMessage, SIGNED_OUT_EVENT } from './api.js';
import { h, replaceChildren } from './dom.js';
import { closeHelp } from './help.js';
import { hooks, resetHooks } from './hooks.js';
import { mountLogin } from './login.js';
import { needsSignIn, session, setSession } from './session.js';
import { mountSlide } from './slide-view.js';
import { mountWorklist } from './worklist.js';
import { currentRoute, interceptLink, onRouteChange, type Route } from './url-state.js';

const root = document.getElementById('app') as HTMLElement;
let unmount: (() => void) | null = null;

function clear(): void {
  unmount?.();
  unmount = null;
  closeHelp();
  resetHooks();
}

function show(route: Route): void {
  clear();
  if (needsSignIn()) {
    unmount = mountLogin(root, session().auth, () => show(currentRoute()));
    return;
  }
  document.title = 'flashslide review';
  if (route.page === 'worklist') {
    unmount = mountWorklist(root);
  } else if (route.page === 'slide') {
    unmount = mountSlide(root, route.id, route.view);
  } else {
    hooks.page = 'none';
    const back = h('a', { href: '/', class: 'btn' }, 'Go to the worklist');
    interceptLink(back);
    replaceChildren(root, h('main', { class: 'not-found' }, h('h1', null, 'Nothing here'), h('p', { class: 'muted' }, `${route.path} is not a page of the review app.`), back));
  }
}

/** The session ended under the page (idle, signed out elsewhere, server restarted): sign in again, then back here. */
window.addEventListener(SIGNED_OUT_EVENT, () => {
  if (hooks.page === 'login') return;
  setSession({ ...session(), user: null, csrf: null });
  clear();
  unmount = mountLogin(root, session().auth, () => show(currentRoute()), 'Your session ended: sign in again to go on.');
});

onRouteChange(show);
api.session().then(
  (info) => {
    setSession(info);
    show(currentRoute());
  },
  (err) => {
    replaceChildren(root, h('main', { class: 'not-found' }, h('h1', null, 'The review server does not answer'), h('p', { class: 'muted' }, errorMessage(err))));
  },
);
