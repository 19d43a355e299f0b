/**
 * RFC 4180 CSV: CRLF line ends, a field quoted when it holds a comma, a quote, CR or LF (quotes
 * doubled inside), UTF-8. Text is written exactly as typed: scripts read these files back, and
 * the usual spreadsheet-formula guard (a leading apostrophe) would change a note such as
 * "-2 mm margin". Numbers are unquoted; a missing value is an empty field.
 */

export type CsvValue = string | number | boolean | null | undefined;

const NEEDS_QUOTES = /[",\r\n]/;

export function csvField(value: CsvValue): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return NEEDS_QUOTES.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

export function csvRecord(values: readonly CsvValue[]): string {
  return `${values.map(csvField).join(',')}\r\n`;
}

/** A table as CSV: header row, then one record per row, columns in `columns` order. */
export function csvTable<Row>(columns: readonly { name: string; value: (row: Row) => CsvValue }[], rows: Iterable<Row>): string {
  let out = csvRecord(columns.map((c) => c.name));
  for (const row of rows) out += csvRecord(columns.map((c) => c.value(row)));
  return out;
}
