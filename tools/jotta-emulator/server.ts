/**
 * Loopback Jottacloud emulator: one HTTP(S) listener serving the identity host, the api host,
 * the upload URLs and the JFS host, dispatched by path and `Host` header.
 * See /work/shared/reference/jottacloud-api.md for the behaviour reproduced here.
 */
import { createReadStream, closeSync, existsSync, ftruncateSync, mkdirSync, openSync, truncateSync, writevSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { AuthManager, KNOWN_CLIENTS, type OAuthError } from './auth.js';
import { FaultInjector, type OneShotFault } from './faults.js';
import { deviceXml, errorXml, fileXml, folderXml, mountPointXml, nextXid, revisionXml, trashXml, userXml } from './render.js';
import {
  EMPTY_MD5,
  EmuError,
  Store,
  guessMime,
  md5File,
  nameKey,
  validateName,
  type Device,
  type FileNode,
  type FolderNode,
  type MountPoint,
  type Node,
  type PendingUpload,
} from './store.js';
import { ensureTls } from './tls.js';
import { XML_DECL, attrs, el, jottaTime, parseClientTime, rfc3339ms } from './xml.js';

export interface EmulatorOptions {
  /** Directory holding all state (created if missing); reused across restarts. */
  stateDir: string;
  /** TCP port on 127.0.0.1; 0 or undefined picks a free one. */
  port?: number;
  /** Serve HTTPS with a certificate for jfs/api/id/up.jottacloud.com, localhost, 127.0.0.1. */
  tls?: boolean;
  /** Fault spec, e.g. `429=0.1,500=0.05,drop-upload=0.05,slow-ms=200`. */
  faults?: string;
  /** Seed of the fault PRNG (default 1). */
  seed?: number;
  /** Account username (default `testuser`); fixed at first start of a state dir. */
  username?: string;
  /** `expires_in` of issued access tokens, seconds (default 3600). */
  tokenTtl?: number;
  /** Account quota in bytes; -1 (default) means unlimited. */
  quota?: number;
  /** Called with one line per request (for debugging). */
  log?: (line: string) => void;
  /** Quirks of the live service to reproduce (see QUIRKS); none by default. */
  quirks?: readonly string[];
}

/**
 * Behaviours of the live service that real users of Jottacloud meet (rclone, Duplicati and
 * jotta-cli issue trackers), off by default so that the default emulator stays what rclone's
 * tests expect:
 * - `quota-460`: an allocate that would take the account past its quota answers HTTP 460
 *   (jotta-cli "Invalid statuscode 460", Duplicati "(460) 460").
 * - `completed-by-size`: allocate answers COMPLETED ("already there") when a live file at the
 *   path has the allocated size, whatever its md5, and stores nothing.
 * - `list-trashed`: `mode=liststream` also lists trashed files (with a `deleted` attribute) and
 *   files whose only revision is an unfinished or corrupt upload (with a `<state>` element).
 * - `plus-is-space`: a raw `+` in a URL path is read as a space (the service decodes paths as
 *   form values; clients must send `%2B`).
 */
export const QUIRKS = ['quota-460', 'completed-by-size', 'list-trashed', 'plus-is-space'] as const;
export type Quirk = (typeof QUIRKS)[number];

export function parseQuirks(q: readonly string[] | string | undefined): Set<Quirk> {
  const list = typeof q === 'string' ? q.split(',') : q ?? [];
  const out = new Set<Quirk>();
  for (const raw of list) {
    const k = raw.trim();
    if (!k) continue;
    if (!(QUIRKS as readonly string[]).includes(k)) throw new Error(`unknown quirk ${JSON.stringify(k)} (known: ${QUIRKS.join(', ')})`);
    out.add(k as Quirk);
  }
  return out;
}

export interface RunningEmulator {
  /** Origin, e.g. `https://127.0.0.1:PORT`. */
  url: string;
  /** A fresh single-use personal login token whose well_known_link points at this emulator. */
  loginToken: string;
  username: string;
  /** Absolute path of the CA certificate (PEM) when TLS is on, else null. */
  caCert: string | null;
  /** PEM text of the CA certificate when TLS is on, else null. */
  caCertPem: string | null;
  stateDir: string;
  mintLoginToken(): Promise<string>;
  close(): Promise<void>;
  /** Counters: `requests`, `req.<endpoint>`, `fault.<kind>`, `upload.*`, `token.*`, … */
  stats(): Record<string, number>;
  /** Replace the random fault rates (and optionally reseed). */
  setFaults(spec: string | undefined, seed?: number): void;
  /** Queue a deterministic fault for the next matching request(s). */
  injectFault(fault: OneShotFault): void;
  /** Drop the fault rates and every queued one-shot fault. */
  clearFaults(): void;
  /** Change `expires_in` for tokens issued from now on. */
  setTokenTtl(seconds: number): void;
  setQuota(bytes: number): void;
  /** Kill all refresh-token families (access tokens stay valid until expiry). */
  revokeRefreshTokens(): number;
  /** Make every access token issued so far invalid (401). */
  revokeAccessTokens(): void;
  /** Replace the set of live-service quirks reproduced (see QUIRKS); [] for none. */
  setQuirks(quirks: readonly string[]): void;
  /** A liststream over more files than this answers 500 (Infinity: no limit). */
  setListstreamMaxFiles(n: number): void;
  /** Lock the account (as for an unpaid subscription) or unlock it: writes (or all but the customer call) answer 403. */
  setLocked(lock: { write?: boolean; read?: boolean; cause?: string | null }): void;
}

type Role = 'id' | 'api' | 'jfs' | 'up' | 'any';
type Kind = 'id' | 'api' | 'jfs' | 'upload';

const HOST_ROLES: Record<string, Role> = {
  'id.jottacloud.com': 'id',
  'api.jottacloud.com': 'api',
  'jfs.jottacloud.com': 'jfs',
  'up.jottacloud.com': 'up',
};

/** The exception name of a 460 answer is not known; the status is what clients see. */
const QUOTA_EXCEPTION = 'no.jotta.backup.errors.QuotaExceededException';

const JFS_COMMANDS = ['mkDir', 'dl', 'rm', 'dlDir', 'rmDir', 'mvDir', 'mv', 'cp', 'cphash'] as const;

interface Route {
  kind: Kind;
  endpoint: string;
}

interface JfsTarget {
  dev: Device;
  mp: MountPoint;
  names: string[];
}

function hostRole(host: string | undefined): Role {
  if (!host) return 'any';
  const h = host.replace(/:\d+$/, '').toLowerCase();
  return HOST_ROLES[h] ?? 'any';
}

function readBody(req: http.IncomingMessage, limit = 1 << 20): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    req.on('data', (d: Buffer) => {
      n += d.length;
      if (n > limit) {
        reject(new EmuError(413, 'no.jotta.backup.errors.InvalidArgumentException', 'request body too large'));
        req.destroy();
        return;
      }
      parts.push(d);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function simpleName(exception: string): string {
  const i = exception.lastIndexOf('.');
  return i >= 0 ? exception.slice(i + 1) : exception;
}

export class Emulator {
  readonly store: Store;
  readonly auth: AuthManager;
  readonly faults: FaultInjector;
  private counters = new Map<string, number>();
  private server!: http.Server;
  private sockets = new Set<Socket>();
  private activeUploads = new Set<string>();
  url = '';
  quota: number;
  quirks: Set<Quirk>;
  /**
   * A `mode=liststream` over more files than this answers 500 (the live service's "packet too
   * large" on huge folders, rclone issue 5639); default: no limit.
   */
  liststreamMaxFiles = Infinity;
  /** Account lock (customer document flags; writes, or everything but the customer call, answer 403). */
  locked: { write: boolean; read: boolean; cause: string | null } = { write: false, read: false, cause: null };
  caCert: string | null = null;
  caCertPem: string | null = null;

  constructor(private opts: EmulatorOptions) {
    mkdirSync(opts.stateDir, { recursive: true });
    this.store = new Store(opts.stateDir, opts.username ?? 'testuser');
    this.auth = new AuthManager(opts.stateDir, this.store.username, opts.tokenTtl ?? 3600, (k, n) => this.count(k, n));
    this.faults = new FaultInjector(opts.faults, opts.seed ?? 1);
    this.quota = opts.quota ?? -1;
    this.quirks = parseQuirks(opts.quirks);
  }

  count(key: string, n = 1): void {
    this.counters.set(key, (this.counters.get(key) ?? 0) + n);
  }

  private max(key: string, v: number): void {
    if (v > (this.counters.get(key) ?? -Infinity)) this.counters.set(key, v);
  }

  stats(): Record<string, number> {
    const out = Object.fromEntries([...this.counters].sort(([a], [b]) => (a < b ? -1 : 1)));
    out['state.usage'] = this.store.usage();
    out['state.pendingUploads'] = this.store.uploads.size;
    out['state.liveTokenFamilies'] = this.auth.liveFamilies();
    return out;
  }

  get wellKnownLink(): string {
    return `${this.url}/auth/realms/jottacloud/.well-known/openid-configuration`;
  }

  async listen(): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.handle(req, res).catch((e: unknown) => {
        try {
          if (!res.headersSent) {
            res.writeHead(500, { 'Content-Type': 'text/plain' });
            res.end(String(e));
          } else {
            res.destroy();
          }
        } catch {
          // ignore
        }
      });
    };
    if (this.opts.tls) {
      const t = await ensureTls(this.opts.stateDir);
      this.caCert = t.caCertPath;
      this.caCertPem = t.caCertPem;
      this.server = https.createServer({ key: t.key, cert: t.cert }, handler);
    } else {
      this.server = http.createServer(handler);
    }
    // Outlive the client's idle timeout so the client, not we, closes idle connections.
    this.server.keepAliveTimeout = 120_000;
    this.server.headersTimeout = 125_000;
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('secureConnection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port ?? 0, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const port = (this.server.address() as AddressInfo).port;
    this.url = `${this.opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
      for (const s of this.sockets) s.destroy();
    });
    this.store.save();
  }

  // -------------------------------------------------------------------------
  // dispatch

  private route(role: Role, method: string, rawPath: string, query: URLSearchParams, contentType: string): Route | null {
    const allow = (k: Role): boolean => role === 'any' || role === k;
    if (rawPath.startsWith('/auth/realms/') && allow('id')) {
      if (rawPath.endsWith('/.well-known/openid-configuration')) return { kind: 'id', endpoint: 'id.well-known' };
      if (rawPath.endsWith('/protocol/openid-connect/token')) return { kind: 'id', endpoint: 'id.token' };
      return { kind: 'id', endpoint: 'id.notFound' };
    }
    if (rawPath.startsWith('/files/v1/upload/') && (allow('up') || role === 'api')) return { kind: 'upload', endpoint: 'upload' };
    if (rawPath === '/account/v1/customer' && allow('api')) return { kind: 'api', endpoint: 'api.customer' };
    if (rawPath === '/files/v1/allocate' && allow('api')) return { kind: 'api', endpoint: 'api.allocate' };
    if (rawPath === '/files/v1/purge_trash' && allow('api')) return { kind: 'api', endpoint: 'api.purge_trash' };
    if ((rawPath === '/jfs' || rawPath.startsWith('/jfs/')) && (allow('jfs') || role === 'up')) {
      const depth = rawPath.split('/').filter((s) => s !== '').length - 1;
      let op: string;
      if (method === 'GET' || method === 'HEAD') {
        const mode = query.get('mode');
        if (depth <= 1) op = 'user';
        else if (depth === 2) op = 'device';
        else if (mode === 'bin') op = 'bin';
        else if (mode === 'liststream') op = 'liststream';
        else if (mode === 'list') op = 'list';
        else if (mode === 'enableShare' || mode === 'disableShare') op = 'share';
        else op = 'get';
      } else if (method === 'POST') {
        const cmd = JFS_COMMANDS.find((c) => query.has(c));
        if (depth > 3 && contentType.startsWith('application/octet-stream')) op = 'legacyUpload';
        else if (depth === 2) op = 'createDevice';
        else if (depth === 3 && !cmd) op = 'createMountpoint';
        else op = cmd ?? 'post';
      } else {
        op = method.toLowerCase();
      }
      return { kind: 'jfs', endpoint: `jfs.${op}` };
    }
    if (role === 'id') return { kind: 'id', endpoint: 'id.notFound' };
    if (role === 'jfs' || role === 'up') return { kind: 'jfs', endpoint: 'jfs.notFound' };
    return { kind: 'api', endpoint: 'api.notFound' };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const qi = rawUrl.indexOf('?');
    const rawPath = qi >= 0 ? rawUrl.slice(0, qi) : rawUrl;
    const query = new URLSearchParams(qi >= 0 ? rawUrl.slice(qi + 1) : '');
    const method = req.method ?? 'GET';
    this.opts.log?.(`${method} ${req.headers.host ?? ''}${rawUrl}${req.headers.range ? ` [${req.headers.range}]` : ''}`);

    if (rawPath.startsWith('/_emulator/')) {
      await this.control(req, res, rawPath.slice('/_emulator/'.length), query);
      return;
    }

    const route = this.route(hostRole(req.headers.host), method, rawPath, query, String(req.headers['content-type'] ?? ''));
    if (!route) return;
    this.count('requests');
    this.count(`req.${route.endpoint}`);

    const delay = this.faults.slowDelay();
    if (delay > 0) {
      this.count('fault.slow');
      await sleep(delay);
    }
    const faultStatus = this.faults.statusFault(route.endpoint);
    if (faultStatus !== null) {
      this.count(`fault.${faultStatus}`);
      this.count('fault.total');
      req.resume();
      const headers: Record<string, string> = { Connection: 'close' };
      if (faultStatus === 429) headers['Retry-After'] = '1';
      const exception = faultStatus === 429 ? 'no.jotta.backup.errors.TooManyRequestsException'
        : faultStatus === 460 ? QUOTA_EXCEPTION : 'org.springframework.dao.TransientDataAccessResourceException';
      this.sendError(res, route.kind, new EmuError(faultStatus, exception, `injected fault ${faultStatus}`), headers);
      return;
    }

    try {
      if (route.endpoint.endsWith('.notFound')) {
        req.resume();
        throw new EmuError(404, 'no.jotta.backup.errors.NoSuchPathException', `No such endpoint ${rawPath} on ${req.headers.host ?? ''}`);
      }
      if (route.kind === 'id') {
        await this.identity(req, res, route.endpoint, rawPath);
        return;
      }
      const authz = String(req.headers.authorization ?? '');
      const m = /^Bearer\s+(\S+)$/i.exec(authz);
      const why = m ? this.auth.verifyAccess(m[1]!) : 'no bearer token';
      if (why !== null) {
        this.count('auth.rejected');
        req.resume();
        throw new EmuError(401, 'org.springframework.security.authentication.BadCredentialsException', `Bad credentials (${why})`);
      }
      if (route.endpoint !== 'api.customer' && (this.locked.read || (this.locked.write && (method === 'POST' || method === 'PUT')))) {
        req.resume();
        throw new EmuError(403, 'no.jotta.backup.errors.WriteAccessDeniedException', `Account is ${this.locked.read ? 'read' : 'write'}-locked${this.locked.cause ? ` (${this.locked.cause})` : ''}`);
      }
      if (route.kind === 'upload') await this.upload(req, res, rawPath.slice('/files/v1/upload/'.length));
      else if (route.kind === 'api') await this.api(req, res, route.endpoint, method);
      else await this.jfs(req, res, route.endpoint, rawPath, query, method);
    } catch (e) {
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      req.resume();
      this.sendError(res, route.kind, e, e instanceof EmuError && e.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="jottacloud"' } : {});
    }
  }

  private sendError(res: http.ServerResponse, kind: Kind, e: unknown, extra: Record<string, string> = {}): void {
    const err = e instanceof EmuError ? e : new EmuError(500, 'java.lang.RuntimeException', e instanceof Error ? e.message : String(e));
    if (!(e instanceof EmuError)) this.count('internalErrors');
    if (kind === 'jfs') {
      this.send(res, err.status, 'application/xml; charset=UTF-8', errorXml(err.status, err.exception, err.message), extra);
    } else if (kind === 'id') {
      const error = err.status === 401 ? 'unauthorized_client' : err.status >= 500 || err.status === 429 ? 'temporarily_unavailable' : 'invalid_request';
      this.sendJson(res, err.status, { error, error_description: err.message }, extra);
    } else {
      this.sendJson(res, err.status, { code: err.status, message: `${err.exception}: ${err.message}`, cause: '', error_id: simpleName(err.exception), 'x-id': nextXid() }, extra);
    }
  }

  private send(res: http.ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
    const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(buf.length), ...extra });
    res.end(buf);
  }

  private sendJson(res: http.ServerResponse, status: number, obj: unknown, extra: Record<string, string> = {}): void {
    this.send(res, status, 'application/json;charset=UTF-8', JSON.stringify(obj), extra);
  }

  private sendXml(res: http.ServerResponse, xml: string, status = 200): void {
    this.send(res, status, 'application/xml; charset=UTF-8', xml);
  }

  // -------------------------------------------------------------------------
  // control endpoints (never faulted)

  private async control(req: http.IncomingMessage, res: http.ServerResponse, what: string, _query: URLSearchParams): Promise<void> {
    const method = req.method ?? 'GET';
    const body = method === 'POST' ? await readBody(req) : Buffer.alloc(0);
    let json: Record<string, unknown> = {};
    if (body.length > 0) {
      try {
        json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      } catch {
        this.sendJson(res, 400, { error: 'body must be JSON' });
        return;
      }
    }
    try {
      if (what === 'stats' && method === 'GET') return this.sendJson(res, 200, this.stats());
      if (what === 'health') return this.sendJson(res, 200, { ok: true });
      if (method !== 'POST') return this.sendJson(res, 405, { error: 'use POST' });
      switch (what) {
        case 'login-token':
          return this.sendJson(res, 200, { loginToken: this.auth.mintLoginToken(this.wellKnownLink) });
        case 'revoke-refresh-tokens':
          return this.sendJson(res, 200, { revoked: this.auth.revokeRefreshTokens() });
        case 'revoke-access-tokens':
          this.auth.revokeAccessTokens();
          return this.sendJson(res, 200, { ok: true });
        case 'faults': {
          if (json.clear === true) this.faults.clear();
          if ('spec' in json) this.faults.setSpec(json.spec === null ? undefined : String(json.spec), typeof json.seed === 'number' ? json.seed : undefined);
          const once = json.once;
          if (Array.isArray(once)) for (const f of once) this.faults.addOnce(f as OneShotFault);
          else if (once && typeof once === 'object') this.faults.addOnce(once as OneShotFault);
          return this.sendJson(res, 200, { ok: true });
        }
        case 'settings':
          if (typeof json.tokenTtl === 'number') this.auth.tokenTtl = json.tokenTtl;
          if (typeof json.quota === 'number') this.quota = json.quota;
          if (Array.isArray(json.quirks)) this.quirks = parseQuirks(json.quirks.map(String));
          if (typeof json.liststreamMaxFiles === 'number') this.liststreamMaxFiles = json.liststreamMaxFiles < 0 ? Infinity : json.liststreamMaxFiles;
          if (json.locked && typeof json.locked === 'object') {
            const l = json.locked as Record<string, unknown>;
            this.locked = { write: l.write === true, read: l.read === true, cause: typeof l.cause === 'string' ? l.cause : null };
          }
          return this.sendJson(res, 200, { tokenTtl: this.auth.tokenTtl, quota: this.quota, quirks: [...this.quirks] });
        default:
          return this.sendJson(res, 404, { error: `unknown control endpoint ${what}` });
      }
    } catch (e) {
      this.sendJson(res, 400, { error: e instanceof Error ? e.message : String(e) });
    }
  }

  // -------------------------------------------------------------------------
  // identity host

  private async identity(req: http.IncomingMessage, res: http.ServerResponse, endpoint: string, rawPath: string): Promise<void> {
    const m = /^\/auth\/realms\/([^/]+)\//.exec(rawPath);
    const realm = m ? m[1]! : 'jottacloud';
    const host = req.headers.host ?? '';
    const base = hostRole(host) === 'id' ? `https://${host.replace(/:443$/, '')}` : this.url;
    const realmBase = `${base}/auth/realms/${realm}`;
    if (endpoint === 'id.well-known') {
      req.resume();
      this.sendJson(res, 200, {
        issuer: realmBase,
        authorization_endpoint: `${realmBase}/protocol/openid-connect/auth`,
        token_endpoint: `${realmBase}/protocol/openid-connect/token`,
        introspection_endpoint: `${realmBase}/protocol/openid-connect/token/introspect`,
        userinfo_endpoint: `${realmBase}/protocol/openid-connect/userinfo`,
        end_session_endpoint: `${realmBase}/protocol/openid-connect/logout`,
        jwks_uri: `${realmBase}/protocol/openid-connect/certs`,
        grant_types_supported: ['authorization_code', 'implicit', 'refresh_token', 'password', 'client_credentials'],
        response_types_supported: ['code', 'none', 'id_token', 'token', 'id_token token', 'code id_token', 'code token', 'code id_token token'],
        subject_types_supported: ['public', 'pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        scopes_supported: ['openid', 'offline_access', 'jotta-default'],
        token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic', 'client_secret_post', 'client_secret_jwt'],
      });
      return;
    }
    if (endpoint !== 'id.token' || req.method !== 'POST') {
      req.resume();
      this.sendJson(res, 404, { error: 'not_found', error_description: 'Unknown identity endpoint' });
      return;
    }
    const form = new URLSearchParams((await readBody(req)).toString('utf8'));
    this.opts.log?.(`  token grant_type=${form.get('grant_type') ?? ''} auth=${req.headers.authorization ? 'basic' : 'none'} client_id=${form.get('client_id') ?? ''}`);
    let client: string | null = null;
    const authz = String(req.headers.authorization ?? '');
    const basic = /^Basic\s+(\S+)$/i.exec(authz);
    let style = 'body';
    if (basic) {
      const dec = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const colon = dec.indexOf(':');
      client = decodeURIComponent((colon >= 0 ? dec.slice(0, colon) : dec).replace(/\+/g, ' '));
      style = 'basic';
    } else if (form.get('client_id')) {
      client = form.get('client_id');
    }
    const fail = (err: OAuthError): void => this.sendJson(res, err.status, { error: err.error, error_description: err.error_description });
    if (!client || !KNOWN_CLIENTS.has(client)) {
      this.count('token.badClient');
      fail({ status: 401, error: 'invalid_client', error_description: client ? 'Invalid client credentials' : 'Client authentication required' });
      return;
    }
    const grant = form.get('grant_type') ?? '';
    let result;
    if (grant === 'password') {
      this.count('token.password');
      result = this.auth.exchangeLoginToken(form.get('username') ?? '', form.get('password') ?? '', client);
    } else if (grant === 'refresh_token') {
      this.count(`token.refresh.${style}`);
      result = this.auth.refresh(form.get('refresh_token') ?? '', client);
    } else {
      fail({ status: 400, error: 'unsupported_grant_type', error_description: `Unsupported grant_type ${grant}` });
      return;
    }
    if (result.ok) this.sendJson(res, 200, result.body, { 'Cache-Control': 'no-store', Pragma: 'no-cache' });
    else fail(result.err);
  }

  // -------------------------------------------------------------------------
  // api host

  private async api(req: http.IncomingMessage, res: http.ServerResponse, endpoint: string, method: string): Promise<void> {
    if (endpoint === 'api.customer') {
      req.resume();
      if (method !== 'GET') throw new EmuError(405, 'org.springframework.web.HttpRequestMethodNotSupportedException', `${method} not supported`);
      const u = this.store.username;
      this.sendJson(res, 200, {
        username: u,
        email: `${u}@example.invalid`,
        name: 'Emulated User',
        country_code: 'NO',
        language_code: 'en',
        customer_group_code: 'CORE',
        brand_code: 'JOTTACLOUD',
        account_type: this.quota < 0 ? 'unlimited' : 'Personal',
        subscription_type: this.quota < 0 ? 'UNLIMITED' : 'LIMITED',
        usage: this.store.usage(),
        quota: this.quota,
        business_usage: 0,
        business_quota: -1,
        write_locked: this.locked.write,
        read_locked: this.locked.read,
        locked_cause: this.locked.cause,
        web_hash: '',
        android_hash: '',
        ios_hash: '',
      });
      return;
    }
    if (method !== 'POST') {
      req.resume();
      throw new EmuError(405, 'org.springframework.web.HttpRequestMethodNotSupportedException', `${method} not supported`);
    }
    if (endpoint === 'api.purge_trash') {
      req.resume();
      const r = this.store.purgeTrash();
      this.store.save();
      this.count('trash.purgedFiles', r.files);
      this.count('trash.purgedFolders', r.folders);
      this.sendJson(res, 200, { folders: r.folders, files: r.files });
      return;
    }
    if (endpoint === 'api.allocate') {
      await this.allocate(req, res);
      return;
    }
    req.resume();
    throw new EmuError(404, 'no.jotta.backup.errors.NoSuchPathException', 'Unknown api endpoint');
  }

  private writableTarget(devName: string, mpName: string): { dev: Device; mp: MountPoint } {
    const dev = this.store.device(devName);
    if (!dev) throw new EmuError(404, 'no.jotta.backup.errors.NoSuchDeviceException', `Device ${devName} not found`);
    const mp = dev.mountpoints.get(nameKey(mpName));
    if (!mp) throw new EmuError(404, 'no.jotta.backup.errors.NoSuchMountPointException', `MountPoint ${mpName} not found`);
    if (mp.special) throw new EmuError(403, 'no.jotta.backup.errors.WriteAccessDeniedException', `Mountpoint ${mp.name} is read-only`);
    return { dev, mp };
  }

  private async allocate(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let body: Record<string, unknown>;
    try {
      const raw = (await readBody(req)).toString('utf8');
      this.opts.log?.(`  allocate ${raw}`);
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', 'Body must be JSON');
    }
    const p = body.path;
    if (typeof p !== 'string' || !p.startsWith('/jfs/')) throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', 'path must look like /jfs/<device>/<mountpoint>/<path>');
    const segs = p.slice('/jfs/'.length).split('/').filter((s) => s !== '');
    if (segs.length < 3) throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', `path ${p} names no file`);
    const bytes = body.bytes;
    if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0) throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', 'bytes must be a non-negative integer');
    const md5 = typeof body.md5 === 'string' ? body.md5.toLowerCase() : '';
    if (!/^[0-9a-f]{32}$/.test(md5)) throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', 'md5 must be 32 hex digits');
    const now = Date.now();
    const modified = body.modified === undefined ? now : parseClientTime(body.modified);
    const created = body.created === undefined ? (modified ?? now) : parseClientTime(body.created);
    if (modified === null || created === null) throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', 'created/modified must be RFC 3339 or epoch milliseconds');
    const [devName, mpName, ...names] = segs as [string, string, ...string[]];
    const { dev, mp } = this.writableTarget(devName, mpName);
    for (const n of names) validateName(n);

    const existing = this.store.lookup(mp, names).node;
    if (existing?.kind === 'folder' && existing.deleted === undefined) {
      throw new EmuError(409, 'no.jotta.backup.errors.UniqueFileException', `A folder exists at ${p}`);
    }
    if (body.conflict_handler === 'REJECT_CONFLICTS' && existing?.kind === 'file' && existing.deleted === undefined && existing.current) {
      if (existing.current.md5 !== md5 || existing.current.size !== bytes) throw new EmuError(409, 'no.jotta.backup.errors.UniqueFileException', `File ${p} already exists`);
    }
    if (this.quirks.has('quota-460') && this.quota >= 0 && this.store.usage() + bytes > this.quota && !this.store.hasContent(md5, bytes)) {
      // refused before anything (folder, file, pending upload) is made
      this.count('allocate.overQuota');
      throw new EmuError(460, QUOTA_EXCEPTION, `Quota exceeded: ${this.store.usage()} + ${bytes} bytes > ${this.quota}`);
    }
    const file = this.store.ensureFile(mp, names, now);
    const name = file.name;
    let state: string;
    let resumePos: number;
    let upload: PendingUpload | undefined = this.store.findUpload(dev.name, mp.name, names);

    if (file.current && file.deleted === undefined && file.current.md5 === md5 && file.current.size === bytes) {
      file.current.created = created;
      file.current.modified = modified;
      state = 'COMPLETED';
      resumePos = bytes;
      this.count('allocate.unchanged');
    } else if (this.quirks.has('completed-by-size') && file.current && file.deleted === undefined && file.current.size === bytes) {
      state = 'COMPLETED';
      resumePos = bytes;
      this.count('allocate.completedBySize');
    } else if (this.store.hasContent(md5, bytes)) {
      this.store.commitRevision(file, { md5, size: bytes, created, modified });
      state = 'COMPLETED';
      resumePos = bytes;
      this.count('allocate.dedup');
    } else {
      if (upload && (upload.md5 !== md5 || upload.bytes !== bytes)) {
        this.store.dropUpload(upload.id);
        upload = undefined;
      }
      if (!upload) {
        upload = { id: randomBytes(18).toString('base64url'), device: dev.name, mountpoint: mp.name, names, md5, bytes, created, modified, started: now };
        this.store.uploads.set(upload.id, upload);
      } else {
        upload.created = created;
        upload.modified = modified;
        upload.names = names;
      }
      resumePos = this.store.partialSize(upload.id);
      this.markIncomplete(file, upload, resumePos);
      state = resumePos > 0 ? 'INCOMPLETE' : 'ADDED';
      if (resumePos > 0) {
        this.count('allocate.resume');
        this.max('allocate.maxResumePos', resumePos);
      }
      this.count('allocate.upload');
    }
    if (state === 'COMPLETED' && upload) {
      this.store.dropUpload(upload.id);
      upload = undefined;
    }
    this.store.save();
    const uploadId = upload?.id ?? randomBytes(18).toString('base64url');
    this.sendJson(res, 200, {
      name,
      path: p,
      state,
      upload_id: uploadId,
      upload_url: `${this.url}/files/v1/upload/${uploadId}`,
      bytes,
      resume_pos: resumePos,
    });
  }

  private markIncomplete(file: FileNode, up: PendingUpload, size: number): void {
    file.latest = {
      number: file.nextNumber,
      state: 'INCOMPLETE',
      created: up.created,
      modified: up.modified,
      updated: Date.now(),
      size,
      md5: up.md5,
      mime: guessMime(file.name),
    };
  }

  // -------------------------------------------------------------------------
  // upload URL

  private async upload(req: http.IncomingMessage, res: http.ServerResponse, id: string): Promise<void> {
    const up = this.store.uploads.get(id);
    if (!up) {
      req.resume();
      throw new EmuError(404, 'no.jotta.backup.errors.NoSuchUploadException', 'Unknown or finished upload');
    }
    if ((req.method ?? '') !== 'POST' && req.method !== 'PUT') {
      req.resume();
      throw new EmuError(405, 'org.springframework.web.HttpRequestMethodNotSupportedException', 'use POST');
    }
    if (this.activeUploads.has(id)) {
      req.resume();
      throw new EmuError(409, 'no.jotta.backup.errors.ConcurrentUploadException', 'Upload already in progress');
    }
    const held = this.store.partialSize(id);
    let start = 0;
    const range = req.headers.range ?? req.headers['content-range'];
    if (range) {
      const m = /^bytes[= ](\d+)-(\d*)/.exec(String(range));
      if (!m) {
        req.resume();
        throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', `Bad range ${range}`);
      }
      start = Number(m[1]);
    }
    if (start > held) {
      req.resume();
      throw new EmuError(416, 'no.jotta.backup.errors.RequestedRangeNotSatisfiedException', `Upload holds ${held} bytes, cannot continue at ${start}`);
    }
    const cl = req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : undefined;
    if (cl !== undefined && start + cl > up.bytes) {
      req.resume();
      throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', `Body of ${cl} bytes at ${start} exceeds the allocated ${up.bytes} bytes`);
    }
    if (start > 0) {
      this.count('upload.resumed');
      this.max('upload.maxResumePos', start);
    }
    const partial = this.store.partialPath(id);
    const fd = openSync(partial, existsSync(partial) ? 'r+' : 'w');
    ftruncateSync(fd, start);
    const dropAt = this.faults.dropUploadAt(start, cl ?? up.bytes - start);
    let corrupt = this.faults.corruptUpload(cl ?? up.bytes - start);
    this.activeUploads.add(id);
    let pos = start;
    let overflow = false;
    // received bytes are written in batches of ~1 MiB (one writev instead of one write per TLS
    // record) and hashed as they arrive when the upload starts at 0: no second read of the file (a
    // resumed upload is hashed from the file at the end)
    const pending: Buffer[] = [];
    let pendingBytes = 0;
    let written = start;
    const flush = (): void => {
      while (pending.length > 0) {
        let n = writevSync(fd, pending, written);
        written += n;
        while (pending.length > 0 && n >= pending[0]!.length) n -= pending.shift()!.length;
        if (n > 0) pending[0] = pending[0]!.subarray(n);
      }
      pendingBytes = 0;
    };
    const hash = start === 0 ? createHash('md5') : null;
    const outcome = await new Promise<'end' | 'dropped' | 'aborted'>((resolve) => {
      let settled = false;
      const settle = (v: 'end' | 'dropped' | 'aborted'): void => {
        if (!settled) {
          settled = true;
          resolve(v);
        }
      };
      req.on('data', (chunk: Buffer) => {
        if (settled) return;
        let buf = chunk;
        let drop = false;
        if (dropAt !== null && pos + buf.length >= dropAt) {
          buf = buf.subarray(0, dropAt - pos);
          drop = true;
        }
        if (pos + buf.length > up.bytes) {
          overflow = true;
          buf = buf.subarray(0, Math.max(0, up.bytes - pos));
        }
        if (corrupt && buf.length > 0) {
          buf = Buffer.from(buf);
          buf[0] ^= 0x01;
          corrupt = false;
          this.count('fault.corrupt-upload');
        }
        if (buf.length > 0) {
          pending.push(buf);
          pendingBytes += buf.length;
          hash?.update(buf);
          if (pendingBytes >= 1024 * 1024) flush();
        }
        pos += buf.length;
        if (drop) {
          settle('dropped');
          req.socket.destroy();
        }
      });
      req.on('end', () => settle('end'));
      req.on('aborted', () => settle('aborted'));
      req.on('close', () => settle('aborted'));
      req.on('error', () => settle('aborted'));
    });
    try {
      flush();
    } finally {
      closeSync(fd);
      this.activeUploads.delete(id);
    }
    const { mp } = this.writableTarget(up.device, up.mountpoint);
    if (outcome !== 'end') {
      this.count(outcome === 'dropped' ? 'fault.drop-upload' : 'upload.aborted');
      if (outcome === 'dropped') this.count('fault.total');
      const node = this.store.lookup(mp, up.names).node;
      if (node?.kind === 'file') this.markIncomplete(node, up, pos);
      this.store.save();
      res.destroy();
      return;
    }
    if (overflow) {
      truncateSync(partial, 0);
      throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', 'More bytes than allocated');
    }
    if (pos < up.bytes) {
      const node = this.store.lookup(mp, up.names).node;
      if (node?.kind === 'file') this.markIncomplete(node, up, pos);
      this.store.save();
      this.count('upload.incomplete');
      this.sendJson(res, 420, { code: 420, message: 'Incomplete upload', cause: '', error_id: 'IncompleteUploadOpenApiException', 'x-id': nextXid(), resume_pos: pos });
      return;
    }
    const md5 = hash ? hash.digest('hex') : await md5File(partial);
    const file = this.store.ensureFile(mp, up.names);
    const jfsPath = `/jfs/${up.device}/${up.mountpoint}/${up.names.join('/')}`;
    if (md5 !== up.md5) {
      file.latest = { number: file.nextNumber++, state: 'CORRUPT', created: up.created, modified: up.modified, updated: Date.now(), size: pos, md5, mime: guessMime(file.name) };
      this.store.dropUpload(id);
      this.store.save();
      this.count('upload.corrupt');
      throw new EmuError(400, 'no.jotta.backup.errors.CorruptUploadOpenApiException', `md5 of received bytes ${md5} differs from allocated ${up.md5}`);
    }
    this.store.adoptContent(partial, md5, pos);
    this.store.ensureFolders(mp, up.names.slice(0, -1));
    this.store.commitRevision(file, { md5, size: pos, created: up.created, modified: up.modified });
    this.store.uploads.delete(id);
    this.store.save();
    this.count('upload.completed');
    this.sendJson(res, 201, { path: jfsPath, content_id: md5, bytes: pos, md5, modified: up.modified });
  }

  // -------------------------------------------------------------------------
  // JFS host

  private parseJfsPath(rawPath: string): { segs: string[]; trailingSlash: boolean } {
    const rest = rawPath.slice('/jfs'.length);
    const segs: string[] = [];
    for (const s of rest.split('/')) {
      if (s === '') continue;
      let d: string;
      try {
        d = decodeURIComponent(this.quirks.has('plus-is-space') ? s.replace(/\+/g, ' ') : s);
      } catch {
        throw new EmuError(400, 'java.lang.IllegalArgumentException', `Unable to validate decoded path: ${rawPath}`);
      }
      if (/%[0-9a-fA-F]{2}/.test(d)) {
        // The live service decodes paths twice (rclone issue 9153).
        throw new EmuError(400, 'java.lang.IllegalArgumentException', `Unable to validate decoded path: ${d}`);
      }
      segs.push(d);
    }
    return { segs, trailingSlash: rest.length > 1 && rest.endsWith('/') };
  }

  private userPath(dev: Device, mp: MountPoint, names: string[]): string {
    return [`/${this.store.username}`, dev.name, mp.name, ...names].join('/');
  }

  private target(segs: string[]): JfsTarget {
    const dev = this.store.device(segs[1]!);
    if (!dev) throw new EmuError(404, 'no.jotta.backup.errors.NoSuchDeviceException', `Device /${this.store.username}/${segs[1]} not found`);
    const mp = dev.mountpoints.get(nameKey(segs[2]!));
    if (!mp) throw new EmuError(404, 'no.jotta.backup.errors.NoSuchMountPointException', `MountPoint /${this.store.username}/${dev.name}/${segs[2]} not found`);
    return { dev, mp, names: segs.slice(3) };
  }

  /** Absolute target from a `mv=`/`cp=`/`mvDir=` value `/<user>/<dev>/<mp>/<path>`. */
  private destTarget(value: string): JfsTarget {
    const segs = value.split('/').filter((s) => s !== '');
    if (segs.length < 4) throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', `Bad destination ${value}`);
    if (segs[0]!.toLowerCase() !== this.store.username.toLowerCase()) throw new EmuError(400, 'org.springframework.security.core.userdetails.UsernameNotFoundException', `Username not found in url! (${segs[0]})`);
    const { dev, mp } = this.writableTarget(segs[1]!, segs[2]!);
    const names = segs.slice(3);
    for (const n of names) validateName(n);
    return { dev, mp, names };
  }

  private parentPathOf(t: JfsTarget, stored: string[]): string {
    return this.userPath(t.dev, t.mp, stored.slice(0, -1));
  }

  private notFound(t: JfsTarget, file: boolean): EmuError {
    const p = this.userPath(t.dev, t.mp, t.names);
    return file ? new EmuError(404, 'no.jotta.backup.errors.NoSuchFileException', `File ${p} does not exist`) : new EmuError(404, 'no.jotta.backup.errors.NoSuchPathException', `Directory ${p}`);
  }

  private async jfs(req: http.IncomingMessage, res: http.ServerResponse, endpoint: string, rawPath: string, query: URLSearchParams, method: string): Promise<void> {
    const op = endpoint.slice('jfs.'.length);
    if (op !== 'legacyUpload') req.resume();
    const { segs } = this.parseJfsPath(rawPath);
    if (segs.length === 0) throw new EmuError(400, 'org.springframework.security.core.userdetails.UsernameNotFoundException', 'Username not found in url!');
    if (segs[0]!.toLowerCase() !== this.store.username.toLowerCase()) {
      throw new EmuError(400, 'org.springframework.security.core.userdetails.UsernameNotFoundException', `Username not found in url! (${segs[0]})`);
    }
    const user = this.store.username;
    switch (op) {
      case 'user':
        return this.sendXml(res, userXml(user, this.store, this.quota));
      case 'device': {
        const dev = this.store.device(segs[1]!);
        if (!dev) throw new EmuError(404, 'no.jotta.backup.errors.NoSuchDeviceException', `Device /${user}/${segs[1]} not found`);
        return this.sendXml(res, deviceXml(user, this.store, dev));
      }
      case 'createDevice': {
        let dev = this.store.device(segs[1]!);
        if (!dev) {
          dev = this.store.createDevice(segs[1]!, (query.get('type') ?? 'WORKSTATION').toUpperCase());
          this.store.save();
        }
        return this.sendXml(res, deviceXml(user, this.store, dev));
      }
      case 'createMountpoint': {
        const dev = this.store.device(segs[1]!);
        if (!dev) throw new EmuError(404, 'no.jotta.backup.errors.NoSuchDeviceException', `Device /${user}/${segs[1]} not found`);
        let mp = dev.mountpoints.get(nameKey(segs[2]!));
        if (!mp) {
          mp = this.store.createMountpoint(dev, segs[2]!);
          this.store.save();
        }
        return this.sendXml(res, mountPointXml(user, dev, mp));
      }
    }
    const t = this.target(segs);
    const l = this.store.lookup(t.mp, t.names);
    const node = l.node;
    const stored = Store.storedNames(l);
    const atRoot = t.names.length === 0;

    if (method === 'GET' || method === 'HEAD') {
      if (t.mp.special && t.mp.name.toLowerCase() === 'trash' && atRoot && op === 'get') return this.sendXml(res, trashXml(user, this.store, t.dev, t.mp));
      switch (op) {
        case 'get':
          if (!node) throw this.notFound(t, false);
          if (atRoot) return this.sendXml(res, mountPointXml(user, t.dev, t.mp));
          if (node.kind === 'folder') return this.sendXml(res, folderXml(node, this.parentPathOf(t, stored)));
          return this.sendXml(res, fileXml(node, this.parentPathOf(t, stored)));
        case 'bin':
          if (!node || node.kind !== 'file' || node.deleted !== undefined || !node.current) throw this.notFound(t, true);
          return this.download(req, res, node);
        case 'liststream':
          if (!node || node.deleted !== undefined) throw this.notFound(t, false);
          if (node.kind !== 'folder') throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', 'liststream needs a folder');
          return this.listStream(res, t, node, stored);
        case 'list':
          if (!node || node.deleted !== undefined) throw this.notFound(t, false);
          if (node.kind !== 'folder') throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', 'list needs a folder');
          return this.sendXml(res, this.fileDirList(t, node, stored));
        case 'share': {
          if (!node || node.kind !== 'file' || node.deleted !== undefined || !node.current) throw this.notFound(t, true);
          if (query.get('mode') === 'enableShare') node.publicURI ??= randomBytes(16).toString('hex');
          else delete node.publicURI;
          this.store.save();
          return this.sendXml(res, fileXml(node, this.parentPathOf(t, stored)));
        }
        default:
          throw new EmuError(405, 'org.springframework.web.HttpRequestMethodNotSupportedException', `${method} not supported`);
      }
    }
    if (method !== 'POST') throw new EmuError(405, 'org.springframework.web.HttpRequestMethodNotSupportedException', `${method} not supported`);

    if (atRoot) {
      if (op === 'mkDir') return this.sendXml(res, mountPointXml(user, t.dev, t.mp));
      throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', `Cannot ${op} a mountpoint`);
    }
    if (t.mp.special) throw new EmuError(403, 'no.jotta.backup.errors.WriteAccessDeniedException', `Mountpoint ${t.mp.name} is read-only`);
    const now = Date.now();
    switch (op) {
      case 'legacyUpload':
        return this.legacyUpload(req, res, t);
      case 'mkDir': {
        for (const n of t.names) validateName(n);
        const f = this.store.ensureFolders(t.mp, t.names, now);
        this.store.save();
        const l2 = this.store.lookup(t.mp, t.names);
        return this.sendXml(res, folderXml(f, this.parentPathOf(t, Store.storedNames(l2))));
      }
      case 'dl': {
        if (!node || node.kind !== 'file') throw this.notFound(t, true);
        this.store.trash(node, now);
        this.store.save();
        return this.sendXml(res, fileXml(node, this.parentPathOf(t, stored)));
      }
      case 'rm': {
        if (!node || node.kind !== 'file') throw this.notFound(t, true);
        l.chain[l.chain.length - 1]!.children.delete(nameKey(node.name));
        const up = this.store.findUpload(t.dev.name, t.mp.name, t.names);
        if (up) this.store.dropUpload(up.id);
        this.store.gcContent();
        this.store.save();
        node.deleted ??= now;
        return this.sendXml(res, fileXml(node, this.parentPathOf(t, stored)));
      }
      case 'dlDir': {
        if (!node || node.kind !== 'folder') throw this.notFound(t, false);
        this.store.trash(node, now);
        this.store.save();
        return this.sendXml(res, folderXml(node, this.parentPathOf(t, stored)));
      }
      case 'rmDir': {
        if (!node || node.kind !== 'folder') throw this.notFound(t, false);
        l.chain[l.chain.length - 1]!.children.delete(nameKey(node.name));
        const prefix = nameKey([t.dev.name, t.mp.name, ...stored].join('/')) + '/';
        for (const u of [...this.store.uploads.values()]) {
          if (nameKey([u.device, u.mountpoint, ...u.names].join('/')).startsWith(prefix)) this.store.dropUpload(u.id);
        }
        this.store.gcContent();
        this.store.save();
        node.deleted ??= now;
        return this.sendXml(res, folderXml(node, this.parentPathOf(t, stored)));
      }
      case 'mv':
      case 'cp':
        return this.moveOrCopyFile(res, op, t, l.chain[l.chain.length - 1]!, node, query.get(op)!);
      case 'mvDir':
        return this.moveDir(res, t, l.chain[l.chain.length - 1]!, node, stored, query.get('mvDir')!);
      case 'cphash':
        return this.cphash(req, res, t, node);
      default:
        throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', 'No command given');
    }
  }

  private download(req: http.IncomingMessage, res: http.ServerResponse, f: FileNode): void {
    const rev = f.current!;
    const size = rev.size;
    const file = this.store.contentPath(rev.md5);
    const headers: Record<string, string> = {
      'Content-Type': rev.mime,
      'Accept-Ranges': 'bytes',
      ETag: `"${rev.md5}"`,
      'Last-Modified': new Date(rev.modified).toUTCString(),
    };
    const range = req.headers.range;
    let start = 0;
    let end = size - 1;
    let status = 200;
    if (range && !range.includes(',')) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (m && (m[1] !== '' || m[2] !== '')) {
        if (m[1] === '') {
          const n = Number(m[2]);
          start = Math.max(0, size - n);
          if (n === 0) start = size;
        } else {
          start = Number(m[1]);
          if (m[2] !== '') end = Math.min(Number(m[2]), size - 1);
        }
        if (start >= size || start > end) {
          this.count('download.rangeNotSatisfiable');
          throw new EmuError(416, 'no.jotta.backup.errors.RequestedRangeNotSatisfiedException', `Range ${range} not satisfiable for ${size} bytes`);
        }
        status = 206;
        headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
        this.count('download.range');
      }
    }
    const len = size === 0 ? 0 : end - start + 1;
    headers['Content-Length'] = String(len);
    res.writeHead(status, headers);
    if (len === 0 || req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file, { start, end }).on('error', () => res.destroy()).pipe(res);
  }

  private listStream(res: http.ServerResponse, t: JfsTarget, folder: FolderNode, stored: string[]): void {
    if (Number.isFinite(this.liststreamMaxFiles)) {
      let n = 0;
      const count = (f: FolderNode): void => {
        for (const c of f.children.values()) {
          if (c.kind === 'file') n++;
          else if (c.deleted === undefined) count(c);
        }
      };
      count(folder);
      if (n > this.liststreamMaxFiles) {
        this.count('liststream.tooLarge');
        throw new EmuError(500, 'org.springframework.dao.TransientDataAccessResourceException', 'PacketTooBigException: Packet for query is too large');
      }
    }
    res.writeHead(200, { 'Content-Type': 'application/xml; charset=UTF-8' });
    res.write(`${XML_DECL}<stream>\n`);
    let nFolders = 0;
    let nFiles = 0;
    const walk = (f: FolderNode, rel: string[]): void => {
      const p = ['', t.mp.name, ...rel].join('/');
      res.write(`<folder>${el('path', p)}</folder>\n`);
      nFolders++;
      const kids = [...f.children.values()].sort((a, b) => (a.name.toLowerCase() < b.name.toLowerCase() ? -1 : 1));
      for (const c of kids) {
        if (c.kind !== 'file') continue;
        if (c.deleted === undefined && c.current) {
          const r = c.current;
          res.write(`<file>${el('path', p)}${el('filename', c.name)}${el('md5', r.md5)}${el('size', r.size)}${el('modified', rfc3339ms(r.modified))}${el('created', rfc3339ms(r.created))}</file>\n`);
          nFiles++;
        } else if (this.quirks.has('list-trashed') && (c.current || c.latest)) {
          // trashed, or never completed: listed with what marks it (a `deleted` attribute, a state)
          const r = (c.deleted !== undefined ? c.current : undefined) ?? c.latest ?? c.current!;
          const a = c.deleted !== undefined ? attrs({ deleted: jottaTime(c.deleted) }) : '';
          const st = r === c.current ? '' : el('state', r.state);
          res.write(`<file${a}>${el('path', p)}${el('filename', c.name)}${el('md5', r.md5)}${el('size', r.size)}${st}${el('modified', rfc3339ms(r.modified))}${el('created', rfc3339ms(r.created))}</file>\n`);
          nFiles++;
        }
      }
      for (const c of kids) if (c.kind === 'folder' && c.deleted === undefined) walk(c, [...rel, c.name]);
    };
    walk(folder, stored);
    res.end(`<stats>${el('folders', nFolders)}${el('files', nFiles)}</stats>\n</stream>\n`);
  }

  private fileDirList(t: JfsTarget, folder: FolderNode, stored: string[]): string {
    let out = `${XML_DECL}<filedirlist${attrs({ time: '', host: 'dn-emu' })}><folders>`;
    const walk = (f: FolderNode, rel: string[]): void => {
      const parent = rel.length === 0 ? this.userPath(t.dev, t.mp, []).split('/').slice(0, -1).join('/') : this.userPath(t.dev, t.mp, rel.slice(0, -1));
      out += `<folder${attrs({ name: f.name })}>${el('path', parent, true)}${el('abspath', parent, true)}<files>`;
      for (const c of f.children.values()) {
        if (c.kind === 'file' && c.deleted === undefined && (c.current || c.latest)) {
          out += `<file${attrs({ name: c.name, uuid: c.uuid })}>`;
          if (c.current) out += revisionXml('currentRevision', c.current);
          if (c.latest) out += revisionXml('latestRevision', c.latest);
          out += '</file>';
        }
      }
      out += '</files></folder>';
      for (const c of f.children.values()) if (c.kind === 'folder' && c.deleted === undefined) walk(c, [...rel, c.name]);
    };
    walk(folder, stored);
    return `${out}</folders></filedirlist>\n`;
  }

  private moveOrCopyFile(res: http.ServerResponse, op: 'mv' | 'cp', t: JfsTarget, parent: FolderNode, node: Node | null, destValue: string): void {
    if (!node || node.kind !== 'file' || node.deleted !== undefined || !node.current) throw this.notFound(t, true);
    const d = this.destTarget(destValue);
    const dl = this.store.lookup(d.mp, d.names);
    const now = Date.now();
    let result: FileNode;
    if (dl.node === node) {
      // same file (possibly a case-only rename)
      const newName = d.names[d.names.length - 1]!;
      if (op === 'mv' && newName !== node.name) {
        parent.children.delete(nameKey(node.name));
        node.name = newName;
        parent.children.set(nameKey(newName), node);
      }
      result = node;
    } else if (dl.node?.kind === 'file') {
      result = dl.node;
      this.store.ensureFolders(d.mp, d.names.slice(0, -1), now);
      this.store.commitRevision(result, node.current);
      if (op === 'mv') parent.children.delete(nameKey(node.name));
    } else {
      if (dl.node && dl.node.deleted === undefined) throw new EmuError(409, 'no.jotta.backup.errors.UniqueFileException', `A folder exists at ${destValue}`);
      const destParent = this.store.ensureFolders(d.mp, d.names.slice(0, -1), now);
      const newName = d.names[d.names.length - 1]!;
      if (op === 'mv') {
        parent.children.delete(nameKey(node.name));
        node.name = newName;
        destParent.children.set(nameKey(newName), node);
        result = node;
      } else {
        result = this.store.ensureFile(d.mp, d.names, now);
        this.store.commitRevision(result, node.current);
      }
      destParent.modified = now;
    }
    this.store.save();
    const rl = this.store.lookup(d.mp, d.names);
    this.sendXml(res, fileXml(result, this.userPath(d.dev, d.mp, Store.storedNames(rl).slice(0, -1))));
  }

  private moveDir(res: http.ServerResponse, t: JfsTarget, parent: FolderNode, node: Node | null, stored: string[], destValue: string): void {
    if (!node || node.kind !== 'folder' || node.deleted !== undefined) throw this.notFound(t, false);
    const d = this.destTarget(destValue);
    if (d.mp === t.mp && d.names.length >= stored.length && d.names.slice(0, stored.length).every((n, i) => nameKey(n) === nameKey(stored[i]!))) {
      if (d.names.length === stored.length) {
        // case-only rename of the folder itself
        const newName = d.names[d.names.length - 1]!;
        parent.children.delete(nameKey(node.name));
        node.name = newName;
        parent.children.set(nameKey(newName), node);
        this.store.save();
        return this.sendXml(res, folderXml(node, this.parentPathOf(d, d.names)));
      }
      throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', 'Cannot move a folder into itself');
    }
    const dl = this.store.lookup(d.mp, d.names);
    if (dl.node && dl.node.deleted === undefined) throw new EmuError(409, 'no.jotta.backup.errors.UniqueFileException', `${destValue} already exists`);
    const now = Date.now();
    const destParent = this.store.ensureFolders(d.mp, d.names.slice(0, -1), now);
    const newName = d.names[d.names.length - 1]!;
    parent.children.delete(nameKey(node.name));
    if (dl.node?.kind === 'folder') {
      // merge into the trashed folder at the destination (its trashed children give way)
      for (const [k, c] of node.children) dl.node.children.set(k, c);
      delete dl.node.deleted;
      dl.node.modified = now;
    } else {
      node.name = newName;
      destParent.children.set(nameKey(newName), node);
    }
    destParent.modified = now;
    // pending uploads below the moved folder follow it
    const prefix = nameKey([t.dev.name, t.mp.name, ...stored].join('/')) + '/';
    for (const u of this.store.uploads.values()) {
      const key = nameKey([u.device, u.mountpoint, ...u.names].join('/'));
      if (key.startsWith(prefix)) {
        u.device = d.dev.name;
        u.mountpoint = d.mp.name;
        u.names = [...d.names, ...u.names.slice(stored.length)];
      }
    }
    this.store.save();
    const rl = this.store.lookup(d.mp, d.names);
    this.sendXml(res, folderXml(rl.node as FolderNode, this.parentPathOf(d, Store.storedNames(rl))));
  }

  private cphash(req: http.IncomingMessage, res: http.ServerResponse, t: JfsTarget, node: Node | null): void {
    const md5 = String(req.headers.jmd5 ?? '').toLowerCase();
    const size = Number(req.headers.jsize ?? NaN);
    if (!/^[0-9a-f]{32}$/.test(md5) || !Number.isSafeInteger(size) || size < 0) {
      throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', 'cphash needs JMd5 and JSize headers');
    }
    const now = Date.now();
    const modified = req.headers.jmodified !== undefined ? parseClientTime(String(req.headers.jmodified)) : now;
    const created = req.headers.jcreated !== undefined ? parseClientTime(String(req.headers.jcreated)) : modified;
    if (modified === null || created === null) throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', 'Bad JCreated/JModified');
    if (node?.kind === 'folder') throw this.notFound(t, true);
    for (const n of t.names) validateName(n);
    let file: FileNode;
    if (node?.kind === 'file' && node.current && node.current.md5 === md5 && node.current.size === size) {
      file = node;
      this.store.ensureFolders(t.mp, t.names.slice(0, -1), now); // revive trashed ancestors
      delete file.deleted;
      file.current!.created = created;
      file.current!.modified = modified;
      this.count('cphash.touch');
    } else if (this.store.hasContent(md5, size)) {
      file = this.store.ensureFile(t.mp, t.names, now);
      this.store.commitRevision(file, { md5, size, created, modified });
      this.count('cphash.dedup');
    } else {
      this.count('cphash.unknown');
      throw new EmuError(404, 'no.jotta.backup.errors.NoSuchFileException', `Content ${md5}/${size} not known; upload needed`);
    }
    this.store.save();
    const l = this.store.lookup(t.mp, t.names);
    this.sendXml(res, fileXml(file, this.parentPathOf(t, Store.storedNames(l))));
  }

  /** Pre-2018 direct upload: POST raw bytes to the file URL with JMd5/JSize headers. */
  private async legacyUpload(req: http.IncomingMessage, res: http.ServerResponse, t: JfsTarget): Promise<void> {
    const md5 = String(req.headers.jmd5 ?? '').toLowerCase();
    const size = Number(req.headers.jsize ?? NaN);
    if (!/^[0-9a-f]{32}$/.test(md5)) {
      req.resume();
      throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', 'Upload without md5 no longer supported. Use header JMd5');
    }
    if (!Number.isSafeInteger(size) || size < 0) {
      req.resume();
      throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', 'Missing JSize header');
    }
    for (const n of t.names) validateName(n);
    const data = await readBody(req, 256 << 20);
    const now = Date.now();
    const modified = parseClientTime(String(req.headers.jmodified ?? '')) ?? now;
    const created = parseClientTime(String(req.headers.jcreated ?? '')) ?? modified;
    const file = this.store.ensureFile(t.mp, t.names, now);
    const got = await this.store.putContent(data);
    if (got !== md5 || data.length !== size) {
      file.latest = { number: file.nextNumber++, state: data.length < size ? 'INCOMPLETE' : 'CORRUPT', created, modified, updated: now, size: data.length, md5: got, mime: guessMime(file.name) };
      this.store.gcContent();
      this.store.save();
      this.count('legacyUpload.bad');
      const l = this.store.lookup(t.mp, t.names);
      return this.sendXml(res, fileXml(file, this.parentPathOf(t, Store.storedNames(l))), 201);
    }
    this.store.commitRevision(file, { md5, size, created, modified });
    this.store.save();
    this.count('legacyUpload.completed');
    const l = this.store.lookup(t.mp, t.names);
    this.sendXml(res, fileXml(file, this.parentPathOf(t, Store.storedNames(l))), 201);
  }
}

/** Start an emulator (see EmulatorOptions); resolves once it is listening. */
export async function startEmulator(opts: EmulatorOptions): Promise<RunningEmulator> {
  const emu = new Emulator({ ...opts, stateDir: path.resolve(opts.stateDir) });
  await emu.listen();
  const loginToken = emu.auth.mintLoginToken(emu.wellKnownLink);
  let closed = false;
  return {
    url: emu.url,
    loginToken,
    username: emu.store.username,
    caCert: emu.caCert,
    caCertPem: emu.caCertPem,
    stateDir: path.resolve(opts.stateDir),
    mintLoginToken: async () => emu.auth.mintLoginToken(emu.wellKnownLink),
    close: async () => {
      if (closed) return;
      closed = true;
      await emu.close();
    },
    stats: () => emu.stats(),
    setFaults: (spec, seed) => emu.faults.setSpec(spec, seed),
    injectFault: (f) => emu.faults.addOnce(f),
    clearFaults: () => emu.faults.clear(),
    setTokenTtl: (s) => {
      emu.auth.tokenTtl = s;
    },
    setQuota: (b) => {
      emu.quota = b;
    },
    revokeRefreshTokens: () => emu.auth.revokeRefreshTokens(),
    revokeAccessTokens: () => emu.auth.revokeAccessTokens(),
    setQuirks: (q) => {
      emu.quirks = parseQuirks(q);
    },
    setListstreamMaxFiles: (n) => {
      emu.liststreamMaxFiles = n;
    },
    setLocked: (l) => {
      emu.locked = { write: !!l.write, read: !!l.read, cause: l.cause ?? null };
    },
  };
}

export { EMPTY_MD5 };
