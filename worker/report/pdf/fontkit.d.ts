// The part of fontkit (pdfkit's font engine, which ships no types) that the report uses: whether
// a face has a glyph for a character.
declare module 'fontkit' {
  export interface Font {
    hasGlyphForCodePoint(codePoint: number): boolean;
  }
  export function create(buffer: Buffer, postscriptName?: string): Font;
}
