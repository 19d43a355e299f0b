/**
 * The PDF report's typographic system and the small drawing primitives every section shares:
 * text that goes through the font fallback, section titles, banners, key/value lists, and the
 * one way a page starts (newPage), which draws its running header and footer. Sections place
 * everything at explicit coordinates and check the space left themselves, so pdfkit never starts
 * a page on its own: every page is numbered as it starts, and is written out as soon as the
 * next one starts, instead of all pages being held in memory for the numbers at the end.
 */
import type { ReportFonts } from './fonts.js';
import { fitText } from './fonts.js';

export type FontRole = 'body' | 'bold' | 'mono';

export interface Pdf {
  doc: PDFKit.PDFDocument;
  fonts: ReportFonts;
  chrome: PageChrome;
  /** Pages started so far, and how many the document has (known after a layout pass; null during it). */
  pages: { count: number; total: number | null };
}

export const STYLE = {
  ink: '#1b1f24',
  muted: '#5b636d',
  faint: '#8d949c',
  rule: '#cfd4da',
  zebra: '#f4f6f8',
  accent: '#1d4f7a',
  struck: '#9aa1a9',
  banner: {
    danger: { ink: '#8a1c1c', fill: '#fdeceb', border: '#c62828' },
    warning: { ink: '#6d4300', fill: '#fff3dc', border: '#e08e00' },
    note: { ink: '#37474f', fill: '#edf1f4', border: '#8fa3ae' },
  },
  size: { title: 17, h2: 11.5, h3: 9.5, body: 8.3, small: 7.2, tiny: 6.4, figure: 15 },
} as const;

export type BannerKind = keyof typeof STYLE.banner;

/** Page margins in points; the header and footer live inside the top and bottom ones. */
export const MARGINS = { top: 56, bottom: 50, left: 44, right: 44 } as const;

export interface ContentBox {
  left: number;
  right: number;
  top: number;
  bottom: number;
  width: number;
  height: number;
}

export function contentBox(doc: PDFKit.PDFDocument): ContentBox {
  const { width, height } = doc.page;
  const box = { left: MARGINS.left, right: width - MARGINS.right, top: MARGINS.top, bottom: height - MARGINS.bottom };
  return { ...box, width: box.right - box.left, height: box.bottom - box.top };
}

export interface TextStyle {
  size?: number;
  font?: FontRole;
  colour?: string;
  width?: number;
  /** Clip to this height (with an ellipsis); without it a single line is drawn and never wrapped. */
  height?: number;
  align?: 'left' | 'right' | 'center';
  strike?: boolean;
  lineGap?: number;
  /** Wrap within `width` (needs `height`, so pdfkit never adds a page by itself). */
  wrap?: boolean;
}

function applyFont(pdf: Pdf, style: TextStyle): void {
  pdf.doc.font(style.font ?? 'body').fontSize(style.size ?? STYLE.size.body);
}

/** Sets the face `text` needs (its role's, or the CJK one of the same weight) and returns the text as it can be set. */
function applyFontFor(pdf: Pdf, text: string, style: TextStyle): string {
  const role = style.font ?? 'body';
  const fitted = fitText(pdf.fonts, text, role === 'bold');
  pdf.doc.font(fitted.face === 'wide' ? (role === 'bold' ? 'wide-bold' : 'wide-body') : role).fontSize(style.size ?? STYLE.size.body);
  return fitted.text;
}

/**
 * Draws text at (x, y), top-aligned. With a width, pdfkit always wraps (its lineBreak option only
 * matters without one) and starts a new page when a line passes the bottom margin, unless it has
 * a height; so every boxed text gets one: one line for single-line text (cut with an ellipsis).
 */
export function put(pdf: Pdf, text: string, x: number, y: number, style: TextStyle = {}): void {
  const wrap = style.wrap === true && style.width !== undefined;
  let height = style.height;
  if (style.width !== undefined && height === undefined) {
    height = wrap ? measure(pdf, text, style.width, style) + 1 : lineHeight(pdf, style) + 0.5;
  }
  const content = applyFontFor(pdf, wrap ? text : text.replace(/\s*\n\s*/g, ' '), style);
  pdf.doc.fillColor(style.colour ?? STYLE.ink).text(content, x, y, {
    lineBreak: wrap,
    ...(style.width !== undefined ? { width: style.width } : {}),
    ...(height !== undefined ? { height, ellipsis: '…' } : {}),
    ...(style.align !== undefined ? { align: style.align } : {}),
    ...(style.strike === true ? { strike: true } : {}),
    lineGap: style.lineGap ?? 0,
  });
}

/** Height `text` takes wrapped at `width`. */
export function measure(pdf: Pdf, text: string, width: number, style: TextStyle = {}): number {
  const content = applyFontFor(pdf, text, style);
  return pdf.doc.heightOfString(content, { width, lineGap: style.lineGap ?? 0 });
}

export function widthOf(pdf: Pdf, text: string, style: TextStyle = {}): number {
  const content = applyFontFor(pdf, text, style);
  return pdf.doc.widthOfString(content);
}

export function lineHeight(pdf: Pdf, style: TextStyle = {}): number {
  applyFont(pdf, style);
  return pdf.doc.currentLineHeight(true) + (style.lineGap ?? 0);
}

/** `text` cut with an ellipsis to fit `width` on one line. */
export function truncate(pdf: Pdf, text: string, width: number, style: TextStyle = {}): string {
  const one = text.replace(/\s+/g, ' ');
  if (widthOf(pdf, one, style) <= width) return one;
  let lo = 0;
  let hi = one.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (widthOf(pdf, `${one.slice(0, mid)}…`, style) <= width) lo = mid;
    else hi = mid - 1;
  }
  return `${one.slice(0, lo)}…`;
}

export function rule(pdf: Pdf, x0: number, x1: number, y: number, colour: string = STYLE.rule, width = 0.6): void {
  pdf.doc.save().moveTo(x0, y).lineTo(x1, y).lineWidth(width).strokeColor(colour).stroke().restore();
}

/** Starts a page with its header and footer; doc.y at the top of its content. */
export function newPage(pdf: Pdf): void {
  pdf.doc.addPage();
  pdf.pages.count++;
  drawChrome(pdf);
  pdf.doc.y = contentBox(pdf.doc).top;
}

/** Starts a new page when fewer than `needed` points are left; returns true when it did. */
export function ensureSpace(pdf: Pdf, needed: number): boolean {
  if (pdf.doc.y + needed <= contentBox(pdf.doc).bottom) return false;
  newPage(pdf);
  return true;
}

/** A numbered-section style title with a rule under it; keeps `keepWith` points of content on its page. */
export function sectionTitle(pdf: Pdf, title: string, note?: string, keepWith = 60): void {
  ensureSpace(pdf, 26 + keepWith);
  const box = contentBox(pdf.doc);
  const y = pdf.doc.y;
  put(pdf, title, box.left, y, { font: 'bold', size: STYLE.size.h2, colour: STYLE.accent });
  if (note !== undefined) put(pdf, note, box.left, y + 2.5, { size: STYLE.size.small, colour: STYLE.muted, width: box.width, align: 'right' });
  rule(pdf, box.left, box.right, y + 16, STYLE.accent, 0.8);
  pdf.doc.y = y + 23;
}

/** A boxed message across the content width (not-diagnostic, changed file, failure). */
export function banner(pdf: Pdf, kind: BannerKind, title: string, body: string): void {
  const box = contentBox(pdf.doc);
  const c = STYLE.banner[kind];
  const pad = 8;
  const textWidth = box.width - 2 * pad - 6;
  const bodyHeight = body === '' ? 0 : measure(pdf, body, textWidth, { size: STYLE.size.body, lineGap: 1 });
  const height = pad + 12 + (body === '' ? 0 : 3 + bodyHeight) + pad;
  ensureSpace(pdf, height + 6);
  const y = pdf.doc.y;
  const doc = pdf.doc;
  doc.save().roundedRect(box.left, y, box.width, height, 3).fillColor(c.fill).fill().restore();
  doc.save().roundedRect(box.left, y, box.width, height, 3).lineWidth(0.8).strokeColor(c.border).stroke().restore();
  doc.save().rect(box.left, y, 4, height).fillColor(c.border).fill().restore();
  put(pdf, title, box.left + pad + 6, y + pad, { font: 'bold', size: STYLE.size.h3 + 0.5, colour: c.ink });
  if (body !== '') put(pdf, body, box.left + pad + 6, y + pad + 15, { size: STYLE.size.body, colour: c.ink, width: textWidth, height: bodyHeight + 2, wrap: true, lineGap: 1 });
  doc.y = y + height + 6;
}

export interface KeyValue {
  key: string;
  value: string;
  mono?: boolean;
  colour?: string;
  bold?: boolean;
}

/** Key/value rows in two columns of text; long values wrap. Returns the y below the last row. */
export function keyValues(pdf: Pdf, rows: readonly KeyValue[], x: number, y: number, width: number, keyWidth: number, size: number = STYLE.size.body): number {
  let cy = y;
  const valueWidth = width - keyWidth;
  for (const row of rows) {
    const style: TextStyle = { size, font: row.mono === true ? 'mono' : row.bold === true ? 'bold' : 'body', lineGap: 0.5 };
    const h = Math.max(lineHeight(pdf, { size }), measure(pdf, row.value, valueWidth, style));
    put(pdf, row.key, x, cy, { size, colour: STYLE.muted, width: keyWidth - 4, height: h + 1, wrap: true });
    put(pdf, row.value, x + keyWidth, cy, { ...style, colour: row.colour ?? STYLE.ink, width: valueWidth, height: h + 1, wrap: true });
    cy += h + 2.2;
  }
  return cy;
}

export interface PageChrome {
  /** Left of the header: the slide's name. */
  title: string;
  /** Right of the header, e.g. the analysis id. */
  right: string;
  /** Left of the footer. */
  footer: string;
  /** A red line in every footer (the output is not diagnostic), or null. */
  notice: string | null;
}

/**
 * The current page's header and footer, with "Page n of N". The bottom margin is lifted while
 * writing, or pdfkit would take text below it for an overflow and start a new page.
 */
function drawChrome(pdf: Pdf): void {
  const { doc, chrome } = pdf;
  const box = contentBox(doc);
  const saved = { ...doc.page.margins };
  doc.page.margins = { top: 0, bottom: 0, left: 0, right: 0 };
  const hy = 26;
  const right = truncate(pdf, chrome.right, box.width * 0.38, { size: STYLE.size.small });
  const rightWidth = widthOf(pdf, right, { size: STYLE.size.small });
  put(pdf, 'flashslide', box.left, hy, { font: 'bold', size: STYLE.size.small, colour: STYLE.accent });
  const brandWidth = widthOf(pdf, 'flashslide', { font: 'bold', size: STYLE.size.small }) + 6;
  put(pdf, truncate(pdf, `anomaly report · ${chrome.title}`, box.width - rightWidth - brandWidth - 16, { size: STYLE.size.small }), box.left + brandWidth, hy, {
    size: STYLE.size.small,
    colour: STYLE.muted,
  });
  put(pdf, right, box.right - rightWidth, hy, { size: STYLE.size.small, colour: STYLE.muted });
  rule(pdf, box.left, box.right, hy + 11);

  const fy = doc.page.height - 36;
  rule(pdf, box.left, box.right, fy - 5);
  const pageText = `Page ${pdf.pages.count} of ${pdf.pages.total ?? '?'}`;
  const pageWidth = widthOf(pdf, pageText, { size: STYLE.size.small });
  put(pdf, pageText, box.right - pageWidth, fy, { size: STYLE.size.small, colour: STYLE.muted });
  put(pdf, truncate(pdf, chrome.footer, box.width * 0.42, { size: STYLE.size.tiny }), box.left, fy + 0.8, { size: STYLE.size.tiny, colour: STYLE.faint });
  if (chrome.notice !== null) {
    const notice = truncate(pdf, chrome.notice, box.width * 0.5, { size: STYLE.size.tiny, font: 'bold' });
    const nw = widthOf(pdf, notice, { size: STYLE.size.tiny, font: 'bold' });
    put(pdf, notice, box.right - pageWidth - 14 - nw, fy + 0.8, { size: STYLE.size.tiny, font: 'bold', colour: STYLE.banner.danger.border });
  }
  doc.page.margins = saved;
}

/** `text` broken into lines that fit `width` (words kept whole unless one alone is too wide). */
export function wrapLines(pdf: Pdf, text: string, width: number, style: TextStyle = {}): string[] {
  const lines: string[] = [];
  for (const paragraph of text.replace(/\r\n?/g, '\n').split('\n')) {
    let line = '';
    for (const word of paragraph.split(/\s+/).filter((w) => w !== '')) {
      const candidate = line === '' ? word : `${line} ${word}`;
      if (widthOf(pdf, candidate, style) <= width) {
        line = candidate;
        continue;
      }
      if (line !== '') lines.push(line);
      line = word;
      // A word wider than the line (a URL, a hash) is broken where it must be.
      while (widthOf(pdf, line, style) > width && line.length > 1) {
        let cut = line.length - 1;
        while (cut > 1 && widthOf(pdf, line.slice(0, cut), style) > width) cut--;
        lines.push(line.slice(0, cut));
        line = line.slice(cut);
      }
    }
    lines.push(line);
  }
  return lines;
}

/** Text that may run over pages (the notes appendix), line by line, starting pages as needed. */
export function flowText(pdf: Pdf, text: string, x: number, width: number, style: TextStyle = {}): void {
  const lh = lineHeight(pdf, style);
  for (const line of wrapLines(pdf, text, width, style)) {
    ensureSpace(pdf, lh);
    put(pdf, line, x, pdf.doc.y, { ...style, width });
    pdf.doc.y += lh;
  }
}
