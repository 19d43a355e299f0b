/**
 * Text from outside (file names, reasons quoting them) made safe for one line of terminal output:
 * control characters (a newline in a file name could forge a "DONE ..." line; escape sequences
 * could rewrite the screen) are shown as \x.. escapes.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
