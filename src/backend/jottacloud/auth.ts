/**
 * Jottacloud authentication (reference §1): personal login token → well-known document →
 * token endpoint (`grant_type=password`, client jottacli), then refresh-token rotation.
 *
 * Refresh tokens are single-use and a reused one kills the whole family, so:
 * - within a process, one refresh at a time (single flight);
 * - across processes, the refresh runs under the account lock and starts by re-reading the
 *   account file and the access-token cache: if another process refreshed meanwhile, its
 *   access token (or at least its rotated refresh token) is used;
 * - the rotated refresh token is written (atomically, 0600) before the new access token is used.
 */
import {
  type JottaAccount, readAccount, readTokenCache, type TokenCache, withAccountLock, writeAccount, writeTokenCache,
  DEFAULT_CLIENT_ID,
} from './accounts.js';
import { InvalidGrantError, JottaError, JottaHttpError } from './errors.js';
import { header, type Http, type HttpResponse, parseRetryAfter, RETRY_STATUSES, RetryableError } from './http.js';

export interface LoginToken {
  username: string;
  realm: string;
  wellKnownLink: string;
  authToken: string;
}

/** Decode a personal login token: URL-safe base64 (padded or not; standard alphabet tolerated) of JSON. */
export function decodeLoginToken(token: string): LoginToken {
  const t = token.replace(/\s+/g, '');
  if (!t || !/^[A-Za-z0-9_\-+/]+=*$/.test(t)) throw new JottaError('the Jottacloud login token is not valid base64: copy the whole personal login token from the Jottacloud web UI');
  const b64 = t.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new JottaError('the Jottacloud login token does not decode to JSON: copy the whole personal login token from the Jottacloud web UI');
  }
  const username = obj['username'];
  const wellKnown = obj['well_known_link'] ?? obj['wellKnownLink'];
  const authToken = obj['auth_token'] ?? obj['authToken'];
  if (typeof username !== 'string' || typeof wellKnown !== 'string' || typeof authToken !== 'string') {
    throw new JottaError('the Jottacloud login token lacks username, well_known_link or auth_token');
  }
  return { username, realm: typeof obj['realm'] === 'string' ? obj['realm'] : 'jottacloud', wellKnownLink: wellKnown, authToken };
}

export interface TokenResponse {
  access_token: string;
  refresh_token?: string;
  expires_in?: number;
  token_type?: string;
}

function parseJson(r: HttpResponse): Record<string, unknown> | null {
  try {
    const v = JSON.parse(r.body.toString('utf8')) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Throws RetryableError for retryable statuses so Http.retry() can back off. */
function retryableStatus(r: HttpResponse, what: string): void {
  if (RETRY_STATUSES.has(r.status)) {
    throw new RetryableError(`${what}: HTTP ${r.status}`, parseRetryAfter(header(r.headers, 'retry-after')), r.status);
  }
}

/** GET the OpenID configuration and return its token_endpoint. */
export async function discoverTokenEndpoint(http: Http, wellKnownLink: string): Promise<string> {
  return http.retry('OpenID discovery', async () => {
    const r = await http.once({ method: 'GET', url: wellKnownLink, headers: { accept: 'application/json' }, unlimited: true });
    retryableStatus(r, 'OpenID discovery');
    const j = parseJson(r);
    if (r.status !== 200 || !j || typeof j['token_endpoint'] !== 'string') {
      throw new JottaHttpError(`OpenID discovery at ${wellKnownLink} failed: HTTP ${r.status}`, r.status);
    }
    return j['token_endpoint'];
  });
}

async function tokenRequest(http: Http, endpoint: string, form: URLSearchParams, what: string): Promise<TokenResponse> {
  // Only answers that say the request was not processed are retried: repeating a refresh whose
  // answer was lost would present a used refresh token and kill the family.
  return http.retry(what, async () => {
    let r: HttpResponse;
    try {
      r = await http.once({
        method: 'POST', url: endpoint, unlimited: true,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
      });
    } catch (e) {
      if (e instanceof RetryableError && /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|UND_ERR_CONNECT_TIMEOUT/.test(e.message)) throw e;
      if (e instanceof RetryableError) throw new JottaError(`${what}: ${e.message}`);
      throw e;
    }
    retryableStatus(r, what);
    const j = parseJson(r);
    if (r.status === 200 && j && typeof j['access_token'] === 'string') {
      const out: TokenResponse = { access_token: j['access_token'] };
      if (typeof j['refresh_token'] === 'string' && j['refresh_token']) out.refresh_token = j['refresh_token'];
      if (typeof j['expires_in'] === 'number') out.expires_in = j['expires_in'];
      else if (typeof j['expires_in'] === 'string' && /^\d+$/.test(j['expires_in'])) out.expires_in = Number(j['expires_in']);
      if (typeof j['token_type'] === 'string') out.token_type = j['token_type'];
      return out;
    }
    if (j && j['error'] === 'invalid_grant') throw new InvalidGrantError(typeof j['error_description'] === 'string' ? j['error_description'] : undefined);
    const desc = j ? `${String(j['error'] ?? '')}${j['error_description'] ? `: ${String(j['error_description'])}` : ''}` : r.body.toString('utf8').slice(0, 200).replace(/\s+/g, ' ');
    throw new JottaHttpError(`${what} failed: HTTP ${r.status} ${desc}`.trim(), r.status);
  }, 5);
}

/** grant_type=password with the login token's auth_token, exactly as rclone sends it (§1.1). */
export async function passwordGrant(http: Http, endpoint: string, lt: LoginToken, clientId = DEFAULT_CLIENT_ID): Promise<TokenResponse> {
  const form = new URLSearchParams();
  form.set('client_id', clientId);
  form.set('grant_type', 'password');
  form.set('password', lt.authToken);
  form.set('scope', 'openid offline_access');
  form.set('username', lt.username);
  return tokenRequest(http, endpoint, form, 'Jottacloud login');
}

/** grant_type=refresh_token with client_id in the body (the form x/oauth2 falls back to; Keycloak public clients accept it). */
export async function refreshGrant(http: Http, endpoint: string, refreshToken: string, clientId = DEFAULT_CLIENT_ID): Promise<TokenResponse> {
  const form = new URLSearchParams();
  form.set('client_id', clientId);
  form.set('grant_type', 'refresh_token');
  form.set('refresh_token', refreshToken);
  return tokenRequest(http, endpoint, form, 'Jottacloud token refresh');
}

export function cacheFromResponse(r: TokenResponse, now = Date.now()): TokenCache {
  const lifetime = r.expires_in && r.expires_in > 0 ? r.expires_in : 3600;
  return { accessToken: r.access_token, expiresAt: now + lifetime * 1000, lifetime };
}

/**
 * Refresh this long before expiry: a minute, or a quarter of a short lifetime, but at least
 * 1.5 s (JWT `exp` has whole seconds, so a token may expire up to a second before our estimate).
 */
function margin(t: TokenCache): number {
  return Math.min(60_000, Math.max(1_500, (t.lifetime * 1000) / 4));
}

function usable(t: TokenCache | null, rejected: Set<string>): t is TokenCache {
  return !!t && !rejected.has(t.accessToken) && Date.now() < t.expiresAt - margin(t);
}

/** Hands out a valid access token for one account, refreshing before expiry or after a 401. */
export class TokenManager {
  private token: TokenCache | null = null;
  private inflight: Promise<void> | null = null;
  /** access tokens the server answered 401 to */
  private rejected = new Set<string>();

  constructor(readonly name: string, public account: JottaAccount, private http: Http) {}

  async accessToken(): Promise<string> {
    for (;;) {
      if (usable(this.token, this.rejected)) return this.token.accessToken;
      if (!this.inflight) this.inflight = this.obtain().finally(() => { this.inflight = null; });
      await this.inflight;
    }
  }

  /**
   * Use this access token (fresh from a login) without reading or writing the account files:
   * login validates the account with it before anything is saved.
   */
  seed(t: TokenCache): void {
    this.token = t;
  }

  /** The server rejected this token (401): the next accessToken() gets another one. */
  invalidate(token: string): void {
    this.rejected.add(token);
    if (this.token?.accessToken === token) this.token = null;
  }

  private async obtain(): Promise<void> {
    // another process may have refreshed: the cache is enough, no lock needed to read it
    const cached = await readTokenCache(this.name);
    if (usable(cached, this.rejected)) {
      this.token = cached;
      return;
    }
    await withAccountLock(this.name, async () => {
      const acct = await readAccount(this.name);
      const again = await readTokenCache(this.name);
      if (usable(again, this.rejected)) {
        this.account = acct;
        this.token = again;
        return;
      }
      if (acct.refreshToken !== this.account.refreshToken) this.http.log('jotta: refresh token was rotated by another process; using the new one');
      const r = await refreshGrant(this.http, acct.tokenEndpoint, acct.refreshToken, acct.clientId);
      this.http.stats.refreshes++;
      const next: JottaAccount = { ...acct, refreshToken: r.refresh_token ?? acct.refreshToken };
      // the rotated refresh token must be on disk before anything else happens
      if (next.refreshToken !== acct.refreshToken) await writeAccount(this.name, next);
      const t = cacheFromResponse(r);
      await writeTokenCache(this.name, t);
      this.account = next;
      this.token = t;
      this.http.log(`jotta: access token refreshed (valid for ${t.lifetime}s)`);
    });
  }
}
