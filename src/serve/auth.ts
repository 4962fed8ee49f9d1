/**
 * Access to `jbackup serve`: one secret per run (random unless given), accepted as the password of
 * HTTP Basic auth (user "jbackup"; WebDAV clients), as `?token=` on a browser's first URL (answered
 * with an HttpOnly, SameSite=Strict cookie and a redirect to the same URL without the token, so it
 * does not stay in the address bar or history), and as that cookie. Comparisons are constant-time
 * (HMAC-SHA-256 of both sides under a per-run key, then timingSafeEqual: equal lengths whatever was sent).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const USERNAME = 'jbackup';
export const COOKIE = 'jbackup_session';

export type AuthResult =
  | { ok: true }
  /** a valid ?token=: set this cookie and redirect to `location` */
  | { ok: 'login'; cookie: string; location: string }
  | { ok: false };

export class Access {
  private readonly key = randomBytes(32);
  private readonly want: Buffer;
  /** the cookie's value: derived from the token, so a leaked cookie is not the Basic-auth password */
  readonly session: string;

  constructor(readonly token: string, readonly secure: boolean) {
    this.want = this.mac(token);
    this.session = createHmac('sha256', token).update('jbackup serve session').digest('base64url');
  }

  private mac(s: string): Buffer {
    return createHmac('sha256', this.key).update(s, 'utf8').digest();
  }

  private equal(given: string, want: Buffer = this.want): boolean {
    return timingSafeEqual(this.mac(given), want);
  }

  static randomToken(): string {
    return randomBytes(24).toString('base64url');
  }

  check(req: IncomingMessage, url: URL): AuthResult {
    const auth = req.headers.authorization;
    if (auth) {
      const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(auth);
      if (m) {
        const text = Buffer.from(m[1]!, 'base64').toString('utf8');
        const colon = text.indexOf(':');
        const user = colon < 0 ? '' : text.slice(0, colon);
        const pass = colon < 0 ? '' : text.slice(colon + 1);
        // both compared, always: no early answer for a wrong user name
        const okUser = this.equal(user, this.mac(USERNAME));
        const okPass = this.equal(pass);
        if (okUser && okPass) return { ok: true };
      }
      return { ok: false };
    }
    const cookie = cookieValue(req.headers.cookie, COOKIE);
    if (cookie !== undefined && this.equal(cookie, this.mac(this.session))) return { ok: true };
    const token = url.searchParams.get('token');
    if (token !== null && (req.method === 'GET' || req.method === 'HEAD') && this.equal(token)) {
      const clean = new URL(url);
      clean.searchParams.delete('token');
      const attrs = ['HttpOnly', 'SameSite=Strict', 'Path=/', ...(this.secure ? ['Secure'] : [])];
      // the request's own path (not the URL parser's: "/.//host" would become "//host", another site)
      const rawPath = (req.url ?? '/').split('?')[0]!;
      return { ok: 'login', cookie: `${COOKIE}=${this.session}; ${attrs.join('; ')}`, location: `${rawPath.startsWith('/') && !rawPath.startsWith('//') ? rawPath : '/'}${clean.search}` };
    }
    return { ok: false };
  }
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
