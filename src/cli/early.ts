/**
 * Loaded by bin/jbackup before the rest of jbackup: when the command line names a repository and the
 * password comes from the environment or a password file, start deriving the key of (up to two of)
 * its key files at once, so the ~0.5 s of scrypt overlaps the ~0.15 s of loading jbackup (and, for a
 * remote repository, whose key parameters come from the hint the last command left, connecting).
 * Only a head start (src/repo/kdf.ts): anything unusual here simply skips it, and the normal path
 * reads the password and key files again and decides.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ID_RE } from '../util/ids.js';
import { checkKdfParams, scryptEarly } from '../repo/kdf.js';
import { isRemoteSpec, readKdfHint } from './kdfhint.js';
import { kdfThreadsFromEnv } from './envopts.js';
import { readPasswordFile } from '../util/password.js';

// bin/jbackup hands NODE_EXTRA_CA_CERTS over under another name so that node does not load the file
// at start-up: restore it for the Jottacloud client (src/backend/jottacloud/http.ts reads it when it
// connects) and for child processes (hooks, password commands)
const extraCa = process.env['JBACKUP_NODE_EXTRA_CA_CERTS'];
if (extraCa !== undefined) {
  process.env['NODE_EXTRA_CA_CERTS'] = extraCa;
  delete process.env['JBACKUP_NODE_EXTRA_CA_CERTS'];
} else if (process.env['NODE_EXTRA_CA_CERTS'] === '') {
  delete process.env['NODE_EXTRA_CA_CERTS'];
}

function flag(argv: string[], short: string | null, long: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return undefined;
    if (a === long || (short !== null && a === short)) return argv[i + 1];
    if (a.startsWith(`${long}=`)) return a.slice(long.length + 1);
  }
  return undefined;
}

/** what a key file (or a KDF hint) says of its derivation */
interface KdfFields { kdf?: string; N?: number; r?: number; p?: number; salt?: string }

/** plausible parameters only: a head start must not cost more than a few restic-sized derivations */
function startOne(password: Buffer, kf: KdfFields): void {
  if (kf.kdf !== 'scrypt' || !kf.N || !kf.r || !kf.p || !kf.salt) return;
  const salt = Buffer.from(kf.salt, 'base64');
  if (kf.N > 2 ** 20 || kf.r > 64 || kf.p > 64 || salt.length !== 64) return;
  try { checkKdfParams(kf); } catch { return; } // a memory bomb: the real open refuses it with a message
  scryptEarly(password, salt, { N: kf.N, r: kf.r, p: kf.p }, kdfThreadsFromEnv());
}

/** exported for tests; runs once when this module loads */
export function start(argv: string[]): void {
  const words = new Set(argv);
  if (words.has('init') || words.has('version') || words.has('help') || words.has('--help') || words.has('-h')) return;
  const repo = flag(argv, '-r', '--repo') ?? process.env['JBACKUP_REPOSITORY'];
  if (!repo) return;
  // the sources in getPassword's order (src/cli/global.ts), read by the one resolver (src/util/password.ts)
  const pwFile = flag(argv, '-p', '--password-file') || process.env['JBACKUP_PASSWORD_FILE'];
  const pwCommand = flag(argv, null, '--password-command') || process.env['JBACKUP_PASSWORD_COMMAND'];
  let password: Buffer;
  if (pwFile && !pwCommand) password = readPasswordFile(pwFile);
  else if (!pwFile && !pwCommand && process.env['JBACKUP_PASSWORD']) password = Buffer.from(process.env['JBACKUP_PASSWORD']);
  else return;
  if (password.length === 0) return;
  if (isRemoteSpec(repo)) {
    // jotta:…: the key file is remote; the last key that opened the repository left a hint
    const h = readKdfHint(repo);
    if (h) startOne(password, { kdf: 'scrypt', ...h });
    return;
  }
  // local paths only (other schemes: no)
  if (/^[a-z][a-z0-9+.-]*:/i.test(repo)) return;
  const dir = path.join(repo, 'keys');
  for (const name of readdirSync(dir).filter((n) => ID_RE.test(n)).slice(0, 2)) {
    startOne(password, JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as KdfFields);
  }
}

try {
  start(process.argv.slice(2));
} catch {
  // no head start
}
