/** Deep Zoom geometry from the DziInfo the server sends (no need to fetch the .dzi XML). */
import type { DziInfo } from '../../server/api-types.js';

/** An inline Deep Zoom descriptor OpenSeadragon's DziTileSource accepts; tiles beside the .dzi. */
export function dziTileSource(info: DziInfo): object {
  const [path = '', query] = info.url.split('?', 2);
  return {
    Image: {
      xmlns: 'http://schemas.microsoft.com/deepzoom/2008',
      Url: tilesUrl(path),
      Format: info.format,
      Overlap: String(info.overlap),
      TileSize: String(info.tileSize),
      Size: { Width: String(info.width), Height: String(info.height) },
    },
    queryParams: query ? `?${query}` : '',
  };
}

/** "/tiles/x/v/heatmap.dzi" -> "/tiles/x/v/heatmap_files/". */
export function tilesUrl(dziPath: string): string {
  return dziPath.replace(/\.(dzi|xml)$/i, '') + '_files/';
}

/** The finest Deep Zoom level: level L is the image shrunk by 2^(maxLevel - L). */
export function dziMaxLevel(info: Pick<DziInfo, 'width' | 'height'>): number {
  return Math.ceil(Math.log2(Math.max(info.width, info.height, 1)));
}

/** Tile (col, row) and the pixel inside it that holds pixel (px, py) of a level. */
export function tileOf(px: number, py: number, info: Pick<DziInfo, 'tileSize' | 'overlap'>): { col: number; row: number; x: number; y: number } {
  const col = Math.floor(px / info.tileSize);
  const row = Math.floor(py / info.tileSize);
  // Every tile but the first in its row/column starts `overlap` pixels early.
  const x = px - col * info.tileSize + (col > 0 ? info.overlap : 0);
  const y = py - row * info.tileSize + (row > 0 ? info.overlap : 0);
  return { col, row, x, y };
}

export function tileUrl(info: DziInfo, level: number, col: number, row: number): string {
  const [path = '', query] = info.url.split('?', 2);
  return `${tilesUrl(path)}${level}/${col}_${row}.${info.format}${query ? `?${query}` : ''}`;
}
