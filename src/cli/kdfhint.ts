/**
 * KDF hints: for repositories that are not local directories (Jottacloud, …) the salt and scrypt
 * parameters of the key that opened the repository last time, kept in the config dir, so that the
 * next command can start deriving the key while jbackup loads and connects instead of after the key
 * file has come over the network (src/cli/early.ts; ~0.4 s of every Jottacloud command). Neither is
 * secret (key files lie in the repository as they are); a stale hint only wastes a derivation, and
 * the normal path always reads the key files and decides.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomicSync } from '../util/atomic.js';
import { mkdirpSync } from '../util/mkdirp.js';
import { configDir } from '../util/paths.js';
import { isJottaLocation } from '../backend/jottacloud/spec.js';
import type { KdfHint } from '../repo/kdf.js';

export type { KdfHint };

/** the repository's key files are remote (`jotta:<path>`, `jotta@<account>:<path>`) */
export function isRemoteSpec(spec: string): boolean {
  return isJottaLocation(spec) || spec.startsWith('rest:') || spec.startsWith('rclone:');
}

function hintFile(spec: string): string {
  return path.join(configDir(), 'kdf-hints', `${createHash('sha256').update(spec).digest('hex').slice(0, 32)}.json`);
}

export function readKdfHint(spec: string): KdfHint | null {
  try {
    const h = JSON.parse(readFileSync(hintFile(spec), 'utf8')) as Partial<KdfHint>;
    if (typeof h.N === 'number' && typeof h.r === 'number' && typeof h.p === 'number' && typeof h.salt === 'string') {
      return { N: h.N, r: h.r, p: h.p, salt: h.salt };
    }
  } catch {
    // none, or unreadable: no head start
  }
  return null;
}

/** remember the hint (0600, temp + rename) unless it is the one stored; failures are ignored */
export function saveKdfHint(spec: string, h: KdfHint): void {
  try {
    const old = readKdfHint(spec);
    if (old && old.N === h.N && old.r === h.r && old.p === h.p && old.salt === h.salt) return;
    const f = hintFile(spec);
    mkdirpSync(path.dirname(f), 0o700);
    writeFileAtomicSync(f, JSON.stringify({ N: h.N, r: h.r, p: h.p, salt: h.salt }), 0o600);
  } catch {
    // only a head start
  }
}
