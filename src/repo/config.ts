import { randomBytes } from 'node:crypto';
import { isIrreducible, randomPolynomial } from './polynomial.js';

export interface RepoConfig {
  version: number;
  id: string;
  chunker_polynomial: string;
}

export function newConfig(): RepoConfig {
  return { version: 2, id: randomBytes(32).toString('hex'), chunker_polynomial: randomPolynomial().toString(16) };
}

export function encodeConfig(c: RepoConfig): Buffer {
  return Buffer.from(JSON.stringify({ version: c.version, id: c.id, chunker_polynomial: c.chunker_polynomial }));
}

export function decodeConfig(b: Uint8Array): RepoConfig {
  const j = JSON.parse(Buffer.from(b).toString('utf8')) as Partial<RepoConfig>;
  if (j.version !== 1 && j.version !== 2) throw new Error(`unsupported repository version ${String(j.version)}`);
  if (typeof j.id !== 'string' || typeof j.chunker_polynomial !== 'string') throw new Error('invalid config file');
  const pol = BigInt(`0x${j.chunker_polynomial}`);
  if (!isIrreducible(pol)) throw new Error('invalid chunker polynomial');
  return { version: j.version, id: j.id, chunker_polynomial: j.chunker_polynomial };
}
