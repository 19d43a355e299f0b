/**
 * The session cookie, parsed and written here rather than through @fastify/cookie: that plugin
 * pulls cookie@2, which declares Node >= 22, and one cookie needs twenty lines.
 *
 * Over https the cookie is named with the __Host- prefix, which browsers accept only when it is
 * Secure, Path=/ and has no Domain: no other site or subdomain can plant or overwrite it.
 */

export const COOKIE_PLAIN = 'flashslide_session';
export const COOKIE_SECURE = '__Host-flashslide_session';

/** Cookie name -> value from a Cookie header (first occurrence wins; malformed pairs skipped). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (header === undefined) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (name !== '' && !out.has(name)) out.set(name, value);
  }
  return out;
}

/** The session id the request carries, under either name. */
export function sessionCookie(header: string | undefined): string | undefined {
  const cookies = parseCookies(header);
  return cookies.get(COOKIE_SECURE) ?? cookies.get(COOKIE_PLAIN);
}

/**
 * Set-Cookie for the session: HttpOnly (page scripts never see it), SameSite=Strict (no other
 * site's page can make the browser send it), Secure over TLS. No Max-Age: the browser forgets it
 * when it closes; the server ends it sooner when idle (auth/sessions.ts).
 */
export function sessionSetCookie(id: string, secure: boolean): string {
  return `${secure ? COOKIE_SECURE : COOKIE_PLAIN}=${id}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** Set-Cookie headers that delete the session cookie under both names. */
export function clearSessionCookies(secure: boolean): string[] {
  const expired = 'Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT';
  // A __Host- cookie can only be deleted by a Secure Set-Cookie; over plain http only the plain one exists.
  return secure ? [`${COOKIE_SECURE}=; ${expired}; Secure`, `${COOKIE_PLAIN}=; ${expired}`] : [`${COOKIE_PLAIN}=; ${expired}`];
}
