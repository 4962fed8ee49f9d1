/**
 * Identity side of the emulator: personal login tokens (single use), access tokens (HS256
 * JWTs signed with a per-state-dir secret) and refresh-token families with rotation and
 * reuse detection.
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import * as path from 'node:path';
import { readJsonIfExists, writeJsonAtomic } from './persist.js';

/** Client ids the token endpoint accepts (jottacli = personal login token flow). */
export const KNOWN_CLIENTS = new Set(['jottacli', 'desktop', 'desktop-win']);

interface LoginTokenRec {
  issued: number;
  used?: number;
}
interface FamilyRec {
  client: string;
  created: number;
  revoked?: number;
  reason?: string;
}
interface RefreshRec {
  family: string;
  issued: number;
  used?: number;
}
interface AuthFile {
  version: 1;
  secret: string;
  /** Serial number for the next access token. */
  nextSerial: number;
  /** Access tokens with a lower serial are revoked. */
  minSerial: number;
  loginTokens: Record<string, LoginTokenRec>;
  families: Record<string, FamilyRec>;
  refreshTokens: Record<string, RefreshRec>;
}

export interface TokenResponse {
  access_token: string;
  expires_in: number;
  refresh_expires_in: number;
  refresh_token: string;
  token_type: string;
  'not-before-policy': number;
  session_state: string;
  scope: string;
}

export interface OAuthError {
  status: number;
  error: string;
  error_description: string;
}

export type TokenResult = { ok: true; body: TokenResponse } | { ok: false; err: OAuthError };

function b64url(buf: Buffer | string): string {
  return Buffer.from(buf).toString('base64url');
}

function invalidGrant(description: string): TokenResult {
  return { ok: false, err: { status: 400, error: 'invalid_grant', error_description: description } };
}

export class AuthManager {
  private file: string;
  private data: AuthFile;
  /** Lifetime of issued access tokens, seconds. */
  tokenTtl: number;

  constructor(
    stateDir: string,
    readonly username: string,
    tokenTtl: number,
    private count: (key: string, n?: number) => void,
  ) {
    this.file = path.join(stateDir, 'auth.json');
    this.tokenTtl = tokenTtl;
    const loaded = readJsonIfExists<AuthFile>(this.file);
    this.data = loaded ?? {
      version: 1,
      secret: randomBytes(32).toString('hex'),
      nextSerial: 1,
      minSerial: 0,
      loginTokens: {},
      families: {},
      refreshTokens: {},
    };
    this.data.nextSerial ??= 1;
    this.data.minSerial ??= 0;
    if (!loaded) this.save();
  }

  private save(): void {
    writeJsonAtomic(this.file, this.data);
  }

  /** A fresh personal login token (unpadded base64url JSON) for `wellKnownLink`. */
  mintLoginToken(wellKnownLink: string): string {
    const authToken = randomBytes(24).toString('base64url');
    this.data.loginTokens[authToken] = { issued: Date.now() };
    this.save();
    this.count('token.login.minted');
    return b64url(JSON.stringify({ username: this.username, realm: 'jottacloud', well_known_link: wellKnownLink, auth_token: authToken }));
  }

  /** grant_type=password with the login token's auth_token as password. */
  exchangeLoginToken(username: string, authToken: string, client: string): TokenResult {
    const rec = this.data.loginTokens[authToken];
    if (!rec || username.toLowerCase() !== this.username.toLowerCase()) {
      this.count('token.login.rejected');
      return invalidGrant('Invalid user credentials');
    }
    if (rec.used !== undefined) {
      this.count('token.login.reused');
      return invalidGrant('Login token already used');
    }
    rec.used = Date.now();
    const family = randomUUID();
    this.data.families[family] = { client, created: Date.now() };
    const body = this.issue(family, client);
    this.save();
    this.count('token.login');
    return { ok: true, body };
  }

  /** grant_type=refresh_token: rotate; a reused token kills its whole family. */
  refresh(refreshToken: string, client: string): TokenResult {
    const rec = this.data.refreshTokens[refreshToken];
    if (!rec) {
      this.count('token.refresh.rejected');
      return invalidGrant('Invalid refresh token');
    }
    const fam = this.data.families[rec.family];
    if (!fam || fam.revoked !== undefined) {
      this.count('token.refresh.rejected');
      return invalidGrant(fam?.reason === 'reuse' ? 'Stale token' : 'Session not active');
    }
    if (fam.client !== client) {
      this.count('token.refresh.rejected');
      return invalidGrant("Session doesn't have required client");
    }
    if (rec.used !== undefined) {
      fam.revoked = Date.now();
      fam.reason = 'reuse';
      this.save();
      this.count('token.refresh.reuse');
      return invalidGrant('Stale token');
    }
    rec.used = Date.now();
    const body = this.issue(rec.family, client);
    this.save();
    this.count('token.refresh');
    return { ok: true, body };
  }

  private issue(family: string, client: string): TokenResponse {
    const now = Date.now();
    const refreshToken = randomBytes(32).toString('base64url');
    this.data.refreshTokens[refreshToken] = { family, issued: now };
    const payload = {
      exp: Math.floor(now / 1000) + this.tokenTtl,
      iat: Math.floor(now / 1000),
      ser: this.data.nextSerial++,
      jti: randomUUID(),
      iss: 'jbackup-jotta-emulator',
      sub: this.username,
      typ: 'Bearer',
      azp: client,
      sid: family,
      scope: 'openid offline_access',
    };
    const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const body = b64url(JSON.stringify(payload));
    const sig = createHmac('sha256', this.data.secret).update(`${head}.${body}`).digest('base64url');
    return {
      access_token: `${head}.${body}.${sig}`,
      expires_in: this.tokenTtl,
      refresh_expires_in: 0,
      refresh_token: refreshToken,
      token_type: 'Bearer',
      'not-before-policy': 0,
      session_state: family,
      scope: 'openid offline_access',
    };
  }

  /** Check a bearer access token; returns null when valid, else a reason. */
  verifyAccess(token: string): string | null {
    const parts = token.split('.');
    if (parts.length !== 3) return 'malformed token';
    const expect = createHmac('sha256', this.data.secret).update(`${parts[0]}.${parts[1]}`).digest();
    const got = Buffer.from(parts[2]!, 'base64url');
    if (got.length !== expect.length || !timingSafeEqual(got, expect)) return 'bad signature';
    let payload: { exp?: number; ser?: number; sub?: string };
    try {
      payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as typeof payload;
    } catch {
      return 'malformed token';
    }
    if (typeof payload.exp !== 'number' || payload.exp * 1000 <= Date.now()) return 'token expired';
    if ((payload.ser ?? 0) < this.data.minSerial) return 'token revoked';
    if (payload.sub !== this.username) return 'wrong subject';
    return null;
  }

  /** Kill every refresh-token family (access tokens keep working until they expire). */
  revokeRefreshTokens(): number {
    let n = 0;
    for (const fam of Object.values(this.data.families)) {
      if (fam.revoked === undefined) {
        fam.revoked = Date.now();
        fam.reason = 'revoked';
        n++;
      }
    }
    this.save();
    return n;
  }

  /** Invalidate every access token issued so far. */
  revokeAccessTokens(): void {
    this.data.minSerial = this.data.nextSerial;
    this.save();
  }

  /** Number of live (non-revoked) families. */
  liveFamilies(): number {
    return Object.values(this.data.families).filter((f) => f.revoked === undefined).length;
  }
}
