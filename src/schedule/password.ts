/**
 * Password sources for unattended runs: an owner-only file, a command, or the OS keyring
 * (macOS Keychain, Linux Secret Service through @napi-rs/keyring). The password is read at run time
 * only; nothing here writes it anywhere but the keyring. The resolver is src/util/password.ts (the
 * CLI's too); profiles always require an owner-only password file.
 */
import type { PasswordSource } from './profile.js';
import { resolvePassword } from '../util/password.js';

export { checkPasswordFile, describeSource, keyringEntry, PasswordSourceError, shellQuote, storeInKeyring } from '../util/password.js';

/** read the password from a profile's source; the file source must be owner-only */
export async function readPassword(src: PasswordSource): Promise<Buffer> {
  return resolvePassword(src, { ownerOnly: true });
}
