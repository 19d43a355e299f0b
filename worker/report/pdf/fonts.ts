/**
 * Which typefaces the PDF report is set in, found in one place. DejaVu Sans (Debian:
 * fonts-dejavu-core) covers every European script and the symbols a pathologist's note may hold
 * (µ, ², ≥, ±); pdfkit's built-in Helvetica only encodes WinAnsi, so where DejaVu is missing the
 * text is reduced to WinAnsi with '?' for the rest, rather than printing wrong glyphs silently.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ReportFonts {
  /** Font sources for pdfkit: a TTF's bytes, or the name of a built-in font. */
  regular: Buffer | string;
  bold: Buffer | string;
  mono: Buffer | string;
  /** True when the fonts are DejaVu (any character), false for the WinAnsi built-ins. */
  unicode: boolean;
}

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
export function findReportFonts(dirs: readonly string[] = DEJAVU_DIRS): ReportFonts {
  const key = dirs.join('\0');
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  let fonts: ReportFonts = { ...BUILTIN_FONTS, unicode: false };
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

/**
 * Text as the fonts can set it: unchanged with DejaVu; with the built-ins, every character
 * WinAnsi lacks becomes '?' (tabs and CR become spaces/newlines first, so notes keep their shape).
 */
export function fitText(fonts: ReportFonts, text: string): string {
  const normalised = text.replace(/\r\n?/g, '\n').replace(/\t/g, ' ');
  if (fonts.unicode) return normalised;
  let out = '';
  for (const ch of normalised) out += isWinAnsi(ch.codePointAt(0) as number) ? ch : '?';
  return out;
}
