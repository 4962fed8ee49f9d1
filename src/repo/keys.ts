/** restic key files: scrypt(password) → user key → decrypts the master key JSON. */
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { keyFromKdf, masterKeyFromJSON, masterKeyToJSON, open, seal, type MasterKey } from '../crypto/crypto.js';
import { formatTimeNs } from '../format/gotime.js';

import { checkKdfParams, scrypt, type KdfParams } from './kdf.js';

export { checkKdfParams, scrypt, type KdfParams };

/**
 * restic calibrates scrypt to ~500 ms with N=32768, r=8 and a CPU-dependent p (6 on our machines).
 * We use N=32768, r=8, p=6 without calibration; callers may pass others (the CLI: JBACKUP_KDF_PARAMS, tests only).
 */
export const DEFAULT_KDF_PARAMS: Readonly<KdfParams> = Object.freeze({ N: 32768, r: 8, p: 6 });

export interface KeyFile {
  created: string;
  username: string;
  hostname: string;
  kdf: string;
  N: number;
  r: number;
  p: number;
  salt: string;
  data: string;
}

export class WrongPasswordError extends Error {
  override name = 'WrongPasswordError';
}

export function nowRfc3339(): string {
  const ms = Date.now();
  const ns = process.hrtime.bigint() % 1_000_000n;
  return formatTimeNs(BigInt(Math.floor(ms / 1000)), (ms % 1000) * 1_000_000 + Number(ns));
}

export async function createKeyFile(password: Buffer, master: MasterKey, params: KdfParams = DEFAULT_KDF_PARAMS, threads = 1): Promise<Buffer> {
  const salt = randomBytes(64);
  const user = keyFromKdf(await scrypt(password, salt, params, threads));
  const data = seal(user, Buffer.from(masterKeyToJSON(master)));
  let username = '';
  try { username = userInfo().username; } catch { /* no passwd entry */ }
  const kf: KeyFile = {
    created: nowRfc3339(), username, hostname: hostname(), kdf: 'scrypt',
    N: params.N, r: params.r, p: params.p, salt: salt.toString('base64'), data: data.toString('base64'),
  };
  return Buffer.from(JSON.stringify(kf));
}

export function parseKeyFile(bytes: Uint8Array): KeyFile {
  let kf: KeyFile;
  try {
    kf = JSON.parse(Buffer.from(bytes).toString('utf8')) as KeyFile;
  } catch (e) {
    throw new Error(`invalid key file JSON: ${(e as Error).message}`);
  }
  if (typeof kf !== 'object' || kf === null || Array.isArray(kf)) throw new Error('key file is not a JSON object');
  if (kf.kdf !== 'scrypt') throw new Error(`unsupported KDF ${JSON.stringify(kf.kdf)} (only scrypt is)`);
  checkKdfParams(kf);
  if (typeof kf.salt !== 'string' || typeof kf.data !== 'string') throw new Error('key file has no salt or data');
  return kf;
}

/** Returns the master key, or throws WrongPasswordError. */
export async function openKeyFile(bytes: Uint8Array, password: Buffer, threads = 1): Promise<MasterKey> {
  const kf = parseKeyFile(bytes);
  const salt = Buffer.from(kf.salt, 'base64');
  if (salt.length !== 64) throw new Error(`key file has an invalid salt length ${salt.length}`);
  const user = keyFromKdf(await scrypt(password, salt, { N: kf.N, r: kf.r, p: kf.p }, threads));
  let plain: Buffer;
  try {
    plain = open(user, Buffer.from(kf.data, 'base64'));
  } catch {
    throw new WrongPasswordError('wrong password or no key found');
  }
  return masterKeyFromJSON(plain.toString('utf8'));
}
