/**
 * Text from outside (file names, reasons quoting them) made safe for one line of terminal output:
 * control characters (a newline in a file name could forge a "DONE ..." line; escape sequences
 * could rewrite the screen) are shown as \x.. escapes. `newlines` keeps line breaks, for the
 * multi-line text flashslide writes itself (a usage message).
 */
export function printable(text: string, options: { newlines?: boolean } = {}): string {
  const control = options.newlines ? /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g : /[\u0000-\u001f\u007f-\u009f]/g;
  return text.replace(control, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
