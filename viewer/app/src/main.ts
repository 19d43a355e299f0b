/** The review app's entry: routes between the worklist and a slide page (history routing). */
import './styles.css';
import { h, replaceChildren } from './dom.js';
import { closeHelp } from './help.js';
import { hooks, resetHooks } from './hooks.js';
import { mountSlide } from './slide-view.js';
import { mountWorklist } from './worklist.js';
import { currentRoute, interceptLink, onRouteChange, type Route } from './url-state.js';

const root = document.getElementById('app') as HTMLElement;
let unmount: (() => void) | null = null;

function show(route: Route): void {
  unmount?.();
  unmount = null;
  closeHelp();
  resetHooks();
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

onRouteChange(show);
show(currentRoute());
