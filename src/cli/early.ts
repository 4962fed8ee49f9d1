/**
 * Loaded by bin/jbackup before the rest of jbackup: when the command line names a local repository
 * and the password comes from the environment or a password file, start deriving the key of (up to
 * two of) its key files at once, so the ~0.5 s of scrypt overlaps the ~0.15 s of loading jbackup.
 * Only a head start (src/repo/kdf.ts): anything unusual here simply skips it, and the normal path
 * reads the password and key files again and decides.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ID_RE } from '../backend/backend.js';
import { scryptEarly } from '../repo/kdf.js';

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

function start(argv: string[]): void {
  const words = new Set(argv);
  if (words.has('init') || words.has('version') || words.has('help') || words.has('--help') || words.has('-h')) return;
  if (flag(argv, null, '--password-command') !== undefined) return;
  const repo = flag(argv, '-r', '--repo') ?? process.env['JBACKUP_REPOSITORY'];
  // local paths only (jotta:…, other schemes: no)
  if (!repo || /^[a-z][a-z0-9+.-]*:/i.test(repo)) return;
  let password: Buffer;
  const pwFile = flag(argv, '-p', '--password-file');
  if (pwFile !== undefined) password = Buffer.from(readFileSync(pwFile, 'utf8').replace(/\r?\n$/, ''));
  else if (process.env['JBACKUP_PASSWORD'] !== undefined) password = Buffer.from(process.env['JBACKUP_PASSWORD']);
  else if (process.env['JBACKUP_PASSWORD_FILE']) password = Buffer.from(readFileSync(process.env['JBACKUP_PASSWORD_FILE'], 'utf8').replace(/\r?\n$/, ''));
  else return;
  const dir = path.join(repo, 'keys');
  for (const name of readdirSync(dir).filter((n) => ID_RE.test(n)).slice(0, 2)) {
    const kf = JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as { kdf?: string; N?: number; r?: number; p?: number; salt?: string };
    if (kf.kdf !== 'scrypt' || !kf.N || !kf.r || !kf.p || !kf.salt) continue;
    // plausible parameters only: a head start must not cost more than a few restic-sized derivations
    const salt = Buffer.from(kf.salt, 'base64');
    if (kf.N > 2 ** 20 || kf.r > 64 || kf.p > 64 || salt.length !== 64) continue;
    scryptEarly(password, salt, { N: kf.N, r: kf.r, p: kf.p });
  }
}

try {
  start(process.argv.slice(2));
} catch {
  // no head start
}
