/**
 * The one password resolver: a source (a value, a file, a command, the OS keyring, one line of
 * standard input, or a prompt the caller provides) becomes a password, with one set of rules and
 * messages for the CLI (src/cli/global.ts picks the source from its flags and environment), profile
 * runs (src/schedule/password.ts) and library callers:
 * - files and command output are trimmed as restic trims them (src/util/pwtext.ts); a value and a
 *   prompt's answer are used as they are; standard input gives one line;
 * - an empty password is refused everywhere, as restic does;
 * - the owner-only rule for password files (no access for group or others; owned by the caller):
 *   checkPasswordFile. Profiles always apply it (they run unattended from a file that must not leak);
 *   the CLI applies it when asked (`ownerOnly`), because restic reads any password file and scripts
 *   written for restic hand jbackup the same files.
 * The keyring module is loaded only when a keyring source is used.
 */
import { readFileSync, readSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { passwordFromLine, passwordFromText } from './pwtext.js';
import { describeSystemError } from './syserr.js';

export type PasswordSource =
  /** a password given as it is (JBACKUP_PASSWORD) */
  | { kind: 'value'; value: string | Uint8Array }
  | { kind: 'file'; path: string }
  | { kind: 'command'; command: string }
  | { kind: 'keyring'; service: string; account: string }
  /** one line of standard input (when it is not a terminal) */
  | { kind: 'stdin' }
  /** ask someone: `ask` shows the question and returns the answer (the CLI's terminal prompt) */
  | { kind: 'prompt'; ask: (question: string) => Promise<string>; what?: string; confirm?: boolean };

export interface ResolveOptions {
  /** refuse a password file that is not owner-only (see checkPasswordFile) */
  ownerOnly?: boolean;
}

/** a password source that gave no password; the message says which and why */
export class PasswordSourceError extends Error {
  override name = 'PasswordSourceError';
}

const EMPTY = 'an empty password is not a password';

export function describeSource(src: PasswordSource): string {
  switch (src.kind) {
    case 'value': return 'the given password';
    case 'file': return `password file ${src.path}`;
    case 'command': return 'password command';
    case 'keyring': return `OS keyring (service "${src.service}", account "${src.account}")`;
    case 'stdin': return 'standard input';
    case 'prompt': return 'the prompt';
  }
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** refuse a password file that anyone but its owner can read or write, or that another user owns */
export function checkPasswordFile(file: string): void {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    throw fileError(file, e);
  }
  if (!st.isFile()) throw new PasswordSourceError(`password file ${file} is not a regular file`);
  const mode = st.mode & 0o777;
  if (mode & 0o077) {
    throw new PasswordSourceError(
      `password file ${file} has mode ${mode.toString(8).padStart(4, '0')}: other users can read it. ` +
      `Refusing to use it; restrict it with: chmod 600 ${shellQuote(file)}`,
    );
  }
  const uid = process.getuid?.();
  if (uid !== undefined && uid !== 0 && st.uid !== uid) {
    throw new PasswordSourceError(`password file ${file} belongs to uid ${st.uid}, not to you (uid ${uid}); refusing to use it`);
  }
}

function fileError(file: string, e: unknown): PasswordSourceError {
  if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new PasswordSourceError(`the password file ${file} does not exist`);
  return new PasswordSourceError(`unable to read the password file ${file}: ${describeSystemError(e)}`);
}

function nonEmpty(pw: Buffer, why: string): Buffer {
  if (pw.length === 0) throw new PasswordSourceError(`${EMPTY}: ${why}`);
  return pw;
}

/** a password file's password (trimmed as restic trims); empty refused. Synchronous: no command, no keyring */
export function readPasswordFile(file: string, o: ResolveOptions = {}): Buffer {
  if (o.ownerOnly) checkPasswordFile(file);
  let pw: Buffer;
  try {
    pw = passwordFromText(readFileSync(file));
  } catch (e) {
    throw fileError(file, e);
  }
  return nonEmpty(pw, `the password file ${file} holds no password (only white space)`);
}

/** a password command's output; its standard error goes to ours, JBACKUP_PASSWORD is not passed on */
function runPasswordCommand(command: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env['JBACKUP_PASSWORD'];
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['inherit', 'pipe', 'inherit'], env });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.on('error', (e) => reject(new PasswordSourceError(`the password command could not be run: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code !== 0) reject(new PasswordSourceError(`the password command failed with ${signal ? `signal ${signal}` : `exit code ${code}`}`));
      else resolve(passwordFromText(Buffer.concat(out)));
    });
  });
}

/** one line from standard input, read a byte at a time so that nothing after it is consumed */
function readStdinLine(): Buffer {
  const bytes: number[] = [];
  const b = Buffer.alloc(1);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, b, 0, 1, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // a non-blocking pipe with nothing in it yet: wait a little (not a spin) and read again
      if (code === 'EAGAIN') { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10); continue; }
      if (code === 'EOF') break;
      throw new PasswordSourceError(`unable to read the password from standard input: ${describeSystemError(e)}`);
    }
    if (n === 0) break;
    bytes.push(b[0]!);
    if (b[0] === 0x0a) break;
  }
  return passwordFromLine(Buffer.from(bytes));
}

interface KeyringEntry {
  getPassword(): string | null;
  setPassword(p: string): void;
  deletePassword(): boolean;
}

const KEYRING_HELP = process.platform === 'darwin'
  ? 'it needs the login Keychain of a logged-in user'
  : 'Linux needs a Secret Service (gnome-keyring, KWallet, KeePassXC) running and unlocked on the session D-Bus';

/** open one keyring entry, with a message that says what is missing when the keyring is not there */
export async function keyringEntry(service: string, account: string): Promise<KeyringEntry> {
  let mod: { Entry: new (s: string, a: string, o?: unknown) => KeyringEntry };
  try {
    const m = (await import('@napi-rs/keyring')) as unknown as { Entry?: unknown; default?: { Entry?: unknown } };
    mod = { Entry: (m.Entry ?? m.default?.Entry) as never };
    if (!mod.Entry) throw new Error('module has no Entry');
  } catch (e) {
    throw new PasswordSourceError(`the OS keyring is not available on this platform (@napi-rs/keyring failed to load: ${(e as Error).message}); use password-file or password-command`);
  }
  try {
    // Linux: require the Secret Service (persistent) rather than falling back to the kernel keyring (lost at reboot)
    return new mod.Entry(service, account, process.platform === 'linux' ? { linux: { store: 'secret-service' } } : undefined);
  } catch (e) {
    throw new PasswordSourceError(`cannot reach the OS keyring (${KEYRING_HELP}): ${(e as Error).message.split('\n')[0]}. Use password-file or password-command instead`);
  }
}

async function readKeyring(service: string, account: string): Promise<Buffer> {
  const entry = await keyringEntry(service, account);
  let pw: string | null;
  try {
    pw = entry.getPassword();
  } catch (e) {
    throw new PasswordSourceError(`cannot read the password from the OS keyring (service "${service}", account "${account}"; ${KEYRING_HELP}): ${(e as Error).message.split('\n')[0]}. Use password-file or password-command instead`);
  }
  if (pw === null) throw new PasswordSourceError(`no password in the OS keyring for service "${service}", account "${account}" (store one with "jbackup profile set-password ${account}")`);
  return Buffer.from(pw);
}

export async function storeInKeyring(service: string, account: string, password: string): Promise<void> {
  const entry = await keyringEntry(service, account);
  try {
    entry.setPassword(password);
  } catch (e) {
    throw new PasswordSourceError(`cannot store the password in the OS keyring (${KEYRING_HELP}): ${(e as Error).message.split('\n')[0]}`);
  }
}

/** the password from `src` (see the rules above) */
export async function resolvePassword(src: PasswordSource, o: ResolveOptions = {}): Promise<Buffer> {
  switch (src.kind) {
    case 'value':
      return nonEmpty(Buffer.from(src.value), 'the given password is empty');
    case 'file':
      return readPasswordFile(src.path, o);
    case 'command':
      return nonEmpty(await runPasswordCommand(src.command), 'the password command printed no password');
    case 'keyring':
      return nonEmpty(await readKeyring(src.service, src.account), `the password in the ${describeSource(src)} is empty`);
    case 'stdin':
      return nonEmpty(readStdinLine(), 'none was given (set JBACKUP_PASSWORD, --password-file or --password-command, pipe it to standard input, or run on a terminal)');
    case 'prompt': {
      const first = await src.ask(`enter password for ${src.what ?? 'repository'}: `);
      if (first === '') throw new PasswordSourceError(EMPTY);
      if (src.confirm && await src.ask('enter password again: ') !== first) throw new PasswordSourceError('passwords do not match');
      return Buffer.from(first);
    }
  }
}
