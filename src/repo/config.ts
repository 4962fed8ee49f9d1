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
  let j: Partial<RepoConfig>;
  try {
    j = JSON.parse(Buffer.from(b).toString('utf8')) as Partial<RepoConfig>;
  } catch (e) {
    throw new Error(`config: invalid JSON: ${(e as Error).message}`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error('config: not a JSON object');
  if (j.version !== 1 && j.version !== 2) throw new Error(`config: unsupported repository version ${JSON.stringify(j.version)} (versions 1 and 2 are supported)`);
  if (typeof j.id !== 'string' || typeof j.chunker_polynomial !== 'string') throw new Error('config: no id or chunker_polynomial');
  if (!/^[0-9a-f]{1,16}$/i.test(j.chunker_polynomial)) throw new Error(`config: invalid chunker polynomial ${JSON.stringify(j.chunker_polynomial)}`);
  const pol = BigInt(`0x${j.chunker_polynomial}`);
  if (!isIrreducible(pol)) throw new Error(`config: chunker polynomial ${j.chunker_polynomial} is not irreducible`);
  return { version: j.version, id: j.id, chunker_polynomial: j.chunker_polynomial };
}
