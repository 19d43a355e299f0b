/**
 * Routes and the viewport in the URL (history routing):
 *   /                                  the worklist
 *   /slides/<id>?x=<px>&y=<px>&z=<zoom> a slide; x, y = the view's centre in level-0 pixels,
 *                                       z = screen pixels per level-0 pixel (1 = full resolution)
 * so a copied link opens the same place at the same magnification.
 */

export interface ViewState {
  x: number;
  y: number;
  z: number;
}

export type Route =
  | { page: 'worklist' }
  | { page: 'slide'; id: string; view: ViewState | null }
  | { page: 'not-found'; path: string };

const SLIDE_PATH = /^\/slides\/([0-9a-f]{24})\/?$/i;

export function parseRoute(pathname: string, search: string): Route {
  if (pathname === '/' || pathname === '' || pathname === '/index.html') return { page: 'worklist' };
  const m = SLIDE_PATH.exec(pathname);
  if (m) return { page: 'slide', id: (m[1] as string).toLowerCase(), view: parseView(search) };
  return { page: 'not-found', path: pathname };
}

export function parseView(search: string): ViewState | null {
  const q = new URLSearchParams(search);
  const x = Number(q.get('x'));
  const y = Number(q.get('y'));
  const z = Number(q.get('z'));
  if (!q.has('x') || !q.has('y') || !q.has('z')) return null;
  if (!Number.isFinite(x) || !Number.isFinite(y) || !(z > 0) || !Number.isFinite(z)) return null;
  return { x, y, z };
}

export function slideHref(id: string, view?: ViewState | null): string {
  if (!view) return `/slides/${id}`;
  const z = view.z >= 1 ? view.z.toFixed(2) : view.z.toPrecision(3);
  return `/slides/${id}?x=${Math.round(view.x)}&y=${Math.round(view.y)}&z=${z}`;
}

type Listener = (route: Route) => void;
let listener: Listener | null = null;

export function currentRoute(): Route {
  return parseRoute(location.pathname, location.search);
}

/** The router's one listener: called on navigate() and on back/forward. */
export function onRouteChange(fn: Listener): void {
  listener = fn;
  window.addEventListener('popstate', () => listener?.(currentRoute()));
}

export function navigate(href: string): void {
  if (href !== location.pathname + location.search) history.pushState(null, '', href);
  listener?.(currentRoute());
}

/** Rewrites the URL for the current view without a history entry. */
export function replaceUrl(href: string): void {
  if (href !== location.pathname + location.search) history.replaceState(history.state, '', href);
}

/** Makes a plain click on an in-app link navigate without a page load (middle/ctrl-click still opens a tab). */
export function interceptLink(a: HTMLAnchorElement): void {
  a.addEventListener('click', (e) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(a.getAttribute('href') ?? '/');
  });
}
