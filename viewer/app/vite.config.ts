/**
 * The review app's build: `npx vite build --config viewer/app/vite.config.ts` writes
 * dist/app/index.html and dist/app/assets/ (everything bundled, nothing from a CDN). The review
 * server serves that folder at `/` and answers index.html for /slides/<id>.
 *
 * Development: `npx vite --config viewer/app/vite.config.ts` serves the app with hot reload and
 * forwards /api and /tiles to a running `flashslide serve` (FLASHSLIDE_SERVER, default
 * http://127.0.0.1:8080).
 */
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

const appRoot = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const server = process.env.FLASHSLIDE_SERVER ?? 'http://127.0.0.1:8080';

export default defineConfig({
  root: appRoot,
  base: '/',
  // No public/ folder: OpenSeadragon's button images are not used (the app draws its own).
  publicDir: false,
  build: {
    outDir: `${repoRoot}dist/app`,
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // OpenSeadragon alone is ~400 kB minified; one chunk is fine for an app used on a LAN.
    chunkSizeWarningLimit: 1024,
  },
  server: {
    // The app imports the colour maps from worker/store/colormap.ts, outside the app's root.
    fs: { allow: [repoRoot] },
    proxy: {
      '/api': { target: server, changeOrigin: false },
      '/tiles': { target: server, changeOrigin: false },
      '/admin': { target: server, changeOrigin: false },
    },
  },
});
