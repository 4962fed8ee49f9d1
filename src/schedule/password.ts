/**
 * Password sources for unattended runs: an owner-only file, a command, or the OS keyring
 * (macOS Keychain, Linux Secret Service through @napi-rs/keyring). The password is read at run time
 * only; nothing here writes it anywhere but the keyring.
 */
import { readFileSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import type { PasswordSource } from './profile.js';
import { passwordFromText } from '../util/pwtext.js';

export class PasswordSourceError extends Error {
  override name = 'PasswordSourceError';
}

/** refuse a password file that anyone but its owner can read or write */
export function checkPasswordFile(file: string): void {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    throw new PasswordSourceError(`cannot read password file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
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

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function runCommand(command: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env['JBACKUP_PASSWORD'];
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'inherit'], env });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.on('error', (e) => reject(new PasswordSourceError(`password command failed: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code !== 0) reject(new PasswordSourceError(`password command failed with ${signal ? `signal ${signal}` : `exit code ${code}`}`));
      else resolve(passwordFromText(Buffer.concat(out)));
    });
  });
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

/** read the password from a profile's source; the file source must be owner-only */
export async function readPassword(src: PasswordSource): Promise<Buffer> {
  let pw: Buffer;
  switch (src.kind) {
    case 'file':
      checkPasswordFile(src.path);
      try {
        pw = passwordFromText(readFileSync(src.path));
      } catch (e) {
        throw new PasswordSourceError(`cannot read password file ${src.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      break;
    case 'command':
      pw = await runCommand(src.command);
      break;
    case 'keyring':
      pw = await readKeyring(src.service, src.account);
      break;
  }
  if (pw.length === 0) throw new PasswordSourceError(`the password from ${describeSource(src)} is empty`);
  return pw;
}

export function describeSource(src: PasswordSource): string {
  switch (src.kind) {
    case 'file': return `password file ${src.path}`;
    case 'command': return 'password command';
    case 'keyring': return `OS keyring (service "${src.service}", account "${src.account}")`;
  }
}
