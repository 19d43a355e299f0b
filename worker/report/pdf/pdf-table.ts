/**
 * A table that flows over pages: rows are measured before they are drawn, a row that does not
 * fit starts a new page, and the header row is repeated on every page it continues on. Cells
 * that wrap (notes) are capped at `maxLines`, so no single row can outgrow a page.
 */
import { contentBox, ensureSpace, lineHeight, measure, put, rule, STYLE, type FontRole, type Pdf } from './pdf-layout.js';

export interface TableColumn<Row> {
  header: string;
  /** Share of the table width; shares are normalised over all columns. */
  weight: number;
  align?: 'left' | 'right' | 'center';
  cell: (row: Row) => string;
  /** Wrap over several lines (else clipped to one). */
  wrap?: boolean;
  /** Struck through when the row is (rejected values stay readable but read as void). */
  strikable?: boolean;
  font?: (row: Row) => FontRole;
  colour?: (row: Row) => string | undefined;
}

export interface RowStyle {
  colour?: string;
  fill?: string;
  strike?: boolean;
}

export interface TableOptions<Row> {
  size?: number;
  padding?: number;
  /** Most lines a wrapping cell shows; the rest is cut with an ellipsis. */
  maxLines?: number;
  rowStyle?: (row: Row, index: number) => RowStyle;
  /** Called when a continuation page starts, before the repeated header. */
  onContinue?: () => void;
}

export const TABLE_DEFAULTS = { size: STYLE.size.small + 0.4, padding: 3.2, maxLines: 12 } as const;

/** Draws `rows` from doc.y down; leaves doc.y below the table. Returns the rows with a cell cut short. */
export function drawTable<Row>(pdf: Pdf, columns: readonly TableColumn<Row>[], rows: readonly Row[], options: TableOptions<Row> = {}): Row[] {
  const o = { ...TABLE_DEFAULTS, ...options };
  const box = contentBox(pdf.doc);
  const total = columns.reduce((s, c) => s + c.weight, 0);
  const widths = columns.map((c) => (c.weight / total) * box.width);
  const xs = widths.map((_, i) => box.left + widths.slice(0, i).reduce((s, w) => s + w, 0));
  const line = lineHeight(pdf, { size: o.size });
  // Headers wrap (a narrow numeric column keeps its full name) to the tallest of them.
  const headerHeight = Math.max(...columns.map((c, i) => measure(pdf, c.header, (widths[i] as number) - 2 * o.padding, { font: 'bold', size: o.size }))) + 2 * o.padding + 1;

  const header = (): void => {
    const y = pdf.doc.y;
    pdf.doc.save().rect(box.left, y, box.width, headerHeight).fillColor('#e6ebf0').fill().restore();
    columns.forEach((c, i) => {
      put(pdf, c.header, (xs[i] as number) + o.padding, y + o.padding + 0.5, {
        font: 'bold',
        size: o.size,
        colour: STYLE.accent,
        width: (widths[i] as number) - 2 * o.padding,
        align: c.align ?? 'left',
        height: headerHeight - 2 * o.padding,
        wrap: true,
      });
    });
    rule(pdf, box.left, box.right, y + headerHeight, STYLE.accent, 0.7);
    pdf.doc.y = y + headerHeight;
  };

  const cut: Row[] = [];
  ensureSpace(pdf, headerHeight + line + 2 * o.padding);
  header();
  rows.forEach((row, r) => {
    const style = o.rowStyle?.(row, r) ?? {};
    const texts = columns.map((c) => c.cell(row));
    const heights = columns.map((c, i) => {
      if (c.wrap !== true) return line;
      const h = measure(pdf, texts[i] as string, (widths[i] as number) - 2 * o.padding, { size: o.size, font: c.font?.(row) ?? 'body' });
      if (h > o.maxLines * line + 0.5 && !cut.includes(row)) cut.push(row);
      return Math.min(h, o.maxLines * line);
    });
    const rowHeight = Math.max(...heights) + 2 * o.padding;
    if (ensureSpace(pdf, rowHeight)) {
      o.onContinue?.();
      header();
    }
    const y = pdf.doc.y;
    const fill = style.fill ?? (r % 2 === 1 ? STYLE.zebra : undefined);
    if (fill !== undefined) pdf.doc.save().rect(box.left, y, box.width, rowHeight).fillColor(fill).fill().restore();
    columns.forEach((c, i) => {
      put(pdf, texts[i] as string, (xs[i] as number) + o.padding, y + o.padding, {
        size: o.size,
        font: c.font?.(row) ?? 'body',
        colour: c.colour?.(row) ?? style.colour ?? STYLE.ink,
        width: (widths[i] as number) - 2 * o.padding,
        align: c.align ?? 'left',
        height: (heights[i] as number) + 1,
        wrap: c.wrap === true,
        strike: style.strike === true && c.strikable === true,
      });
    });
    rule(pdf, box.left, box.right, y + rowHeight, STYLE.rule, 0.4);
    pdf.doc.y = y + rowHeight;
  });
  return cut;
}
