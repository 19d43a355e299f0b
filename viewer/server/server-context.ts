/** What every route shares: the catalog, open slides, caches, stores and the live-update hub. */
import type { Auth } from './auth/auth-plugin.js';
import type { SlideCatalog } from './catalog.js';
import type { LiveUpdates } from './live-updates.js';
import type { ServeOptions } from './options.js';
import type { RegionCache } from './regions.js';
import type { ReviewStore } from './review-store.js';
import type { SlideAccess } from './slide-access.js';
import type { TileRouteOptions } from './tiles/tile-routes.js';

export interface ServerContext {
  options: ServeOptions;
  catalog: SlideCatalog;
  access: SlideAccess;
  regions: RegionCache;
  reviews: ReviewStore;
  live: LiveUpdates;
  tileOptions: TileRouteOptions;
  auth: Auth;
}
