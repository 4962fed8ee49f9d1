/**
 * Authenticated calls to the Jottacloud api and JFS hosts: bearer tokens (refresh after a 401,
 * once), retries of 429/5xx/network errors, error documents turned into one-line messages.
 */
import { type JottaAccount, DEFAULT_API_URL, DEFAULT_JFS_URL, readAccount } from './accounts.js';
import { TokenManager } from './auth.js';
import { AccountLockedError, formatBytes, JottaHttpError, QuotaExceededError } from './errors.js';
import { header, Http, type HttpOptions, type HttpRequest, type HttpResponse, parseRetryAfter, RETRY_STATUSES, RetryableError } from './http.js';
import { child, childText, parseXml } from './xml.js';

export interface Customer {
  /** the internal user name used in JFS paths */
  username: string;
  email?: string;
  accountType?: string;
  subscriptionType?: string;
  usage: number;
  /** bytes; negative means unlimited */
  quota: number;
  writeLocked: boolean;
  readLocked: boolean;
  lockedCause: string | null;
}

export interface DriveInfo {
  usage: number;
  /** bytes; -1 = unlimited */
  capacity: number;
  accountType?: string;
  locked: boolean;
  writeLocked: boolean;
  readLocked: boolean;
  quotaWriteLocked: boolean;
}

function trimOrigin(u: string): string {
  return u.replace(/\/+$/, '');
}

function num(v: unknown, dflt: number): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) return Number(v);
  return dflt;
}

function bool(v: unknown): boolean {
  return v === true || v === 'true';
}

/** A one-line description of an error answer: JFS error XML, api JSON, or the status line. */
export function describeError(r: HttpResponse): { message: string; code?: string } {
  const text = r.body.toString('utf8');
  const trimmed = text.trim();
  if (trimmed.startsWith('<')) {
    try {
      const x = parseXml(trimmed);
      if (x.name === 'error') {
        const msg = childText(x, 'message') ?? childText(x, 'reason') ?? '';
        const exc = /^([\w.]+(?:Exception|Error))(?::\s*)?(.*)$/s.exec(msg);
        if (exc) {
          const code = exc[1]!.slice(exc[1]!.lastIndexOf('.') + 1);
          return { message: `${code}: ${exc[2]!.trim() || (childText(x, 'reason') ?? '')}`.replace(/\s+/g, ' '), code };
        }
        return { message: msg.replace(/\s+/g, ' ') || `HTTP ${r.status}` };
      }
    } catch {
      // fall through
    }
  }
  if (trimmed.startsWith('{')) {
    try {
      const j = JSON.parse(trimmed) as Record<string, unknown>;
      const code = typeof j['error_id'] === 'string' ? j['error_id'] : typeof j['error'] === 'string' ? j['error'] : undefined;
      let msg = typeof j['message'] === 'string' ? j['message'] : typeof j['error_description'] === 'string' ? j['error_description'] : '';
      msg = msg.replace(/^[\w.]+\.(\w+(?:Exception|Error)):\s*/, '');
      return { message: `${code ? `${code}: ` : ''}${msg}`.replace(/\s+/g, ' ').trim() || `HTTP ${r.status}`, ...(code ? { code } : {}) };
    } catch {
      // fall through
    }
  }
  return { message: trimmed ? trimmed.slice(0, 200).replace(/\s+/g, ' ') : `HTTP ${r.status}` };
}

export function httpError(r: HttpResponse, what: string): JottaHttpError {
  const d = describeError(r);
  return new JottaHttpError(`${what}: HTTP ${r.status} ${d.message}`.trim(), r.status, d.code, parseRetryAfter(header(r.headers, 'retry-after')));
}

export class JottaClient {
  readonly tokens: TokenManager;
  private customerP: Promise<Customer> | null = null;

  constructor(readonly accountName: string, public account: JottaAccount, readonly http: Http) {
    this.tokens = new TokenManager(accountName, account, http);
  }

  static async open(accountName: string, opts: HttpOptions = {}): Promise<JottaClient> {
    const account = await readAccount(accountName);
    return new JottaClient(accountName, account, new Http(opts));
  }

  get apiUrl(): string {
    return trimOrigin(this.account.apiUrl ?? DEFAULT_API_URL);
  }

  get jfsOrigin(): string {
    return trimOrigin(this.account.jfsUrl ?? DEFAULT_JFS_URL);
  }

  /** One attempt with a bearer token; a 401 invalidates the token and is retried once with a new one. */
  async authed(req: HttpRequest): Promise<HttpResponse> {
    let tok = await this.tokens.accessToken();
    const send = (t: string) => this.http.once({ ...req, headers: { ...(req.headers ?? {}), authorization: `Bearer ${t}` } });
    let r = await send(tok);
    if (r.status === 401) {
      this.http.log(`jotta: access token rejected (HTTP 401) on ${req.label ?? req.method}; refreshing`);
      this.tokens.invalidate(tok);
      tok = await this.tokens.accessToken();
      r = await send(tok);
      if (r.status === 401) {
        throw new JottaHttpError(`Jottacloud rejected a freshly refreshed access token (${describeError(r).message}): run \`jbackup jotta login\` again`, 401);
      }
    }
    return r;
  }

  /**
   * authed() with retries of retryable statuses and network errors; other statuses are returned,
   * except a 403 from an account that got locked since its customer document was read (an unpaid
   * subscription, say): that becomes the one-line AccountLockedError.
   */
  async call(label: string, req: HttpRequest, maxAttempts?: number): Promise<HttpResponse> {
    const r = await this.http.retry(label, async () => {
      const r = await this.authed({ ...req, label });
      if (RETRY_STATUSES.has(r.status)) {
        throw new RetryableError(`HTTP ${r.status} ${describeError(r).message}`.trim(), parseRetryAfter(header(r.headers, 'retry-after')), r.status);
      }
      return r;
    }, maxAttempts);
    if (r.status === 403) {
      const c = await this.customer(true).catch(() => null);
      if (c?.readLocked) throw this.lockedError(c, 'read');
      if (c?.writeLocked && req.method !== 'GET') throw this.lockedError(c, 'write');
    }
    return r;
  }

  /** GET /account/v1/customer (cached per process unless `fresh`). */
  customer(fresh = false): Promise<Customer> {
    if (fresh || !this.customerP) {
      const p = this.fetchCustomer();
      this.customerP = p;
      p.catch(() => { if (this.customerP === p) this.customerP = null; });
    }
    return this.customerP!;
  }

  private async fetchCustomer(): Promise<Customer> {
    const r = await this.call('GET customer', { method: 'GET', url: `${this.apiUrl}/account/v1/customer`, headers: { accept: 'application/json' } });
    if (r.status !== 200) throw httpError(r, 'Jottacloud customer info');
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new JottaHttpError('Jottacloud customer info: the answer is not JSON', r.status);
    }
    if (typeof j['username'] !== 'string' || !j['username']) throw new JottaHttpError('Jottacloud customer info has no username', r.status);
    return {
      username: j['username'],
      ...(typeof j['email'] === 'string' ? { email: j['email'] } : {}),
      ...(typeof j['account_type'] === 'string' ? { accountType: j['account_type'] } : {}),
      ...(typeof j['subscription_type'] === 'string' ? { subscriptionType: j['subscription_type'] } : {}),
      usage: num(j['usage'], 0),
      quota: num(j['quota'], -1),
      writeLocked: bool(j['write_locked']),
      readLocked: bool(j['read_locked']),
      lockedCause: typeof j['locked_cause'] === 'string' && j['locked_cause'] ? j['locked_cause'] : null,
    };
  }

  lockedError(c: Customer, what: 'read' | 'write'): AccountLockedError {
    return new AccountLockedError(`the Jottacloud account ${c.username} is ${what}-locked${c.lockedCause ? ` (${c.lockedCause})` : ''}: log in to the Jottacloud web UI to see why and resolve it`);
  }

  quotaError(c: { username: string; usage: number; quota: number }, need?: number): QuotaExceededError {
    return new QuotaExceededError(`the Jottacloud account ${c.username} is out of storage space (${formatBytes(c.usage)} used of ${formatBytes(c.quota)}${need !== undefined ? `, ${formatBytes(need)} more needed` : ''}): free space (prune with --jotta-hard-delete, empty the Jottacloud trash) or upgrade the subscription`);
  }

  /** Throws AccountLockedError when the customer document says the account is locked. */
  async checkAccess(write: boolean): Promise<Customer> {
    const c = await this.customer();
    if (c.readLocked) throw this.lockedError(c, 'read');
    if (write && c.writeLocked) throw this.lockedError(c, 'write');
    return c;
  }

  /** `/jfs/<user>/<device>/<mountpoint>/<segments…>` as a URL (segments already name-encoded). */
  async jfsUrl(segments: readonly string[], query = ''): Promise<string> {
    const c = await this.customer();
    const p = [c.username, this.account.device, this.account.mountpoint, ...segments].map((s) => encodeURIComponent(s)).join('/');
    return `${this.jfsOrigin}/jfs/${p}${query ? `?${query}` : ''}`;
  }

  /** GET /jfs/<user>: usage and capacity. */
  async drive(): Promise<DriveInfo> {
    const c = await this.customer();
    const r = await this.call('GET account', { method: 'GET', url: `${this.jfsOrigin}/jfs/${encodeURIComponent(c.username)}` });
    if (r.status !== 200) throw httpError(r, 'Jottacloud account info');
    const x = parseXml(r.body.toString('utf8'));
    const t = (n: string) => childText(x, n);
    return {
      usage: num(t('usage'), 0),
      capacity: num(t('capacity'), -1),
      ...(t('account-type') ? { accountType: t('account-type')! } : {}),
      locked: t('locked') === 'true',
      writeLocked: t('write-locked') === 'true',
      readLocked: t('read-locked') === 'true',
      quotaWriteLocked: t('quota-write-locked') === 'true',
    };
  }

  /** Make sure a non-default device and mountpoint exist (as rclone's config flow does). */
  async ensureDeviceAndMountpoint(): Promise<void> {
    const c = await this.customer();
    const dev = `${this.jfsOrigin}/jfs/${encodeURIComponent(c.username)}/${encodeURIComponent(this.account.device)}`;
    let r = await this.call('GET device', { method: 'GET', url: dev });
    if (r.status === 404) {
      r = await this.call('create device', { method: 'POST', url: `${dev}?type=WORKSTATION` });
      if (r.status !== 200 && r.status !== 201) throw httpError(r, `creating Jottacloud device ${this.account.device}`);
      r = await this.call('GET device', { method: 'GET', url: dev });
    }
    if (r.status !== 200) throw httpError(r, `Jottacloud device ${this.account.device}`);
    const x = parseXml(r.body.toString('utf8'));
    const mps = child(x, 'mountPoints')?.children.filter((m) => m.name === 'mountPoint').map((m) => (childText(m, 'name') ?? m.attrs['name'] ?? '').toLowerCase()) ?? [];
    if (!mps.includes(this.account.mountpoint.toLowerCase())) {
      r = await this.call('create mountpoint', { method: 'POST', url: `${dev}/${encodeURIComponent(this.account.mountpoint)}` });
      if (r.status !== 200 && r.status !== 201) throw httpError(r, `creating Jottacloud mountpoint ${this.account.mountpoint}`);
    }
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}
