/**
 * Which typefaces the PDF report is set in, found in one place. DejaVu Sans (Debian:
 * fonts-dejavu-core) covers every European script and the symbols a pathologist's note may hold
 * (µ, ², ≥, ±); pdfkit's built-in Helvetica only encodes WinAnsi, so where DejaVu is missing the
 * text is reduced to WinAnsi with '?' for the rest, rather than printing wrong glyphs silently.
 * DejaVu has no Chinese, Japanese or Korean: a text holding characters it lacks is set in Noto
 * Sans CJK (fonts-noto-cjk) when that is installed, and whatever no font here can show becomes
 * '?', never an empty box. The CSV and JSON exports hold every note exactly.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { create as openFont, type Font } from 'fontkit';

export interface ReportFonts {
  /** Font sources for pdfkit: a TTF's bytes, or the name of a built-in font. */
  regular: Buffer | string;
  bold: Buffer | string;
  mono: Buffer | string;
  /** True when the fonts are DejaVu (any character), false for the WinAnsi built-ins. */
  unicode: boolean;
  /** The faces for text DejaVu cannot set (CJK); null where none is installed. */
  wide: WideFonts | null;
}

/** A face inside a font collection (.ttc): the file and the face's PostScript name. */
export interface FontFace {
  file: string;
  face: string;
}

export interface WideFonts {
  regular: FontFace;
  bold: FontFace;
}

/** Where distributions install Noto Sans CJK (a collection per weight; the Japanese face first). */
export const WIDE_FONT_CANDIDATES: readonly WideFonts[] = [
  '/usr/share/fonts/opentype/noto', // Debian, Ubuntu (fonts-noto-cjk)
  '/usr/share/fonts/google-noto-cjk', // Fedora
  '/usr/share/fonts/noto-cjk', // Arch
].map((dir) => ({
  regular: { file: join(dir, 'NotoSansCJK-Regular.ttc'), face: 'NotoSansCJKjp-Regular' },
  bold: { file: join(dir, 'NotoSansCJK-Bold.ttc'), face: 'NotoSansCJKjp-Bold' },
}));

/** Where distributions install DejaVu; the first holding both Sans faces wins. */
export const DEJAVU_DIRS: readonly string[] = [
  '/usr/share/fonts/truetype/dejavu', // Debian, Ubuntu
  '/usr/share/fonts/dejavu', // Fedora, Alpine
  '/usr/share/fonts/TTF', // Arch
];

const FILES = { regular: 'DejaVuSans.ttf', bold: 'DejaVuSans-Bold.ttf', mono: 'DejaVuSansMono.ttf' } as const;

export const BUILTIN_FONTS = { regular: 'Helvetica', bold: 'Helvetica-Bold', mono: 'Courier' } as const;

// The TTFs are read once per process: a report is made many times in a batch, and pdfkit
// subsets what it embeds, so holding ~1.5 MB of font bytes is cheaper than re-reading them.
const cache = new Map<string, ReportFonts>();

/** The report's fonts: DejaVu from the first of `dirs` that has it, else the built-ins. */
export function findReportFonts(dirs: readonly string[] = DEJAVU_DIRS, wideCandidates: readonly WideFonts[] = WIDE_FONT_CANDIDATES): ReportFonts {
  const key = [...dirs, ...wideCandidates.map((w) => w.regular.file)].join('\0');
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  let fonts: ReportFonts = { ...BUILTIN_FONTS, unicode: false, wide: null };
  for (const dir of dirs) {
    const regular = join(dir, FILES.regular);
    const bold = join(dir, FILES.bold);
    if (!existsSync(regular) || !existsSync(bold)) continue;
    try {
      const mono = join(dir, FILES.mono);
      fonts = {
        regular: readFileSync(regular),
        bold: readFileSync(bold),
        mono: existsSync(mono) ? readFileSync(mono) : BUILTIN_FONTS.mono,
        unicode: true,
        // Only where DejaVu is: next to the built-ins' WinAnsi, a CJK face would set Latin text too.
        wide: wideCandidates.find((w) => existsSync(w.regular.file) && existsSync(w.bold.file)) ?? null,
      };
      break;
    } catch {
      // An unreadable font file is a reason to fall back, not to fail a report.
    }
  }
  cache.set(key, fonts);
  return fonts;
}

/** Code points outside Latin-1 that WinAnsi (CP1252) still encodes. */
const WIN_ANSI_EXTRA = new Set([
  0x0152, 0x0153, 0x0160, 0x0161, 0x0178, 0x017d, 0x017e, 0x0192, 0x02c6, 0x02dc, 0x2013, 0x2014, 0x2018, 0x2019, 0x201a, 0x201c, 0x201d, 0x201e, 0x2020,
  0x2021, 0x2022, 0x2026, 0x2030, 0x2039, 0x203a, 0x20ac, 0x2122,
]);

function isWinAnsi(cp: number): boolean {
  return cp === 0x0a || (cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xff) || WIN_ANSI_EXTRA.has(cp);
}

// Faces opened for their character maps, once per process (a CJK collection is ~20 MB: read
// only when a text needs it).
const faces = new Map<string, Font>();
function faceOf(source: Buffer, key: string, face?: string): Font {
  let f = faces.get(key);
  if (f === undefined) {
    f = openFont(source, face);
    faces.set(key, f);
  }
  return f;
}

/** Latin, Greek, Cyrillic and the symbols DejaVu has: no character map needs to be asked. */
const SURELY_DEJAVU = /^[\n\u0020-\u024f\u0370-\u03ff\u0400-\u04ff\u2010-\u2044\u2070-\u209f\u2190-\u21ff\u2200-\u22ff]*$/u;

/** Which face sets a text: the role's own, or the wide (CJK) face of the same weight. */
export type FaceChoice = 'own' | 'wide';

/**
 * Text as the fonts can set it, and with which face (tabs and CR become spaces/newlines first, so
 * notes keep their shape):
 * - built-ins: every character WinAnsi lacks becomes '?';
 * - DejaVu: unchanged when DejaVu has every character; else the wide face when there is one
 *   (it has Latin too, so a mixed note stays in one face), and any character the chosen face
 *   lacks becomes '?'.
 */
export function fitText(fonts: ReportFonts, text: string, bold = false): { text: string; face: FaceChoice } {
  const normalised = text.replace(/\r\n?/g, '\n').replace(/\t/g, ' ');
  if (!fonts.unicode) {
    let out = '';
    for (const ch of normalised) out += isWinAnsi(ch.codePointAt(0) as number) ? ch : '?';
    return { text: out, face: 'own' };
  }
  if (SURELY_DEJAVU.test(normalised)) return { text: normalised, face: 'own' };
  const own = faceOf(bold ? (fonts.bold as Buffer) : (fonts.regular as Buffer), bold ? 'dejavu-bold' : 'dejavu');
  const has = (f: Font, ch: string): boolean => ch === '\n' || f.hasGlyphForCodePoint(ch.codePointAt(0) as number);
  const chars = [...normalised];
  if (chars.every((ch) => has(own, ch))) return { text: normalised, face: 'own' };
  let chosen = own;
  let face: FaceChoice = 'own';
  if (fonts.wide !== null) {
    const w = bold ? fonts.wide.bold : fonts.wide.regular;
    try {
      chosen = faceOf(readFileSync(w.file), w.file, w.face);
      face = 'wide';
    } catch {
      // An unreadable collection: DejaVu with '?' for what it lacks.
    }
  }
  return { text: chars.map((ch) => (has(chosen, ch) ? ch : '?')).join(''), face };
}
