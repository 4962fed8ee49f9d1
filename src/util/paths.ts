/**
 * Where jbackup keeps its configuration (profiles, Jottacloud accounts, KDF hints) and its state
 * (status records): shared by the CLI, the scheduler and the Jottacloud accounts, so it lives at the
 * bottom layer.
 */
import * as os from 'node:os';
import * as path from 'node:path';

/** the variable, or undefined when unset or empty (an empty value means "not set" to every caller) */
export const nonEmptyEnv = (k: string) => {
  const v = process.env[k];
  return v === undefined || v === '' ? undefined : v;
};

export function homeDir(): string {
  return nonEmptyEnv('HOME') ?? os.homedir();
}

/** `~` and `~/x` → home; anything else unchanged */
export function expandHome(p: string): string {
  if (p === '~') return homeDir();
  if (p.startsWith('~/')) return path.join(homeDir(), p.slice(2));
  return p;
}

/** JBACKUP_CONFIG_DIR, else $XDG_CONFIG_HOME/jbackup, else ~/.config/jbackup (macOS: ~/Library/Application Support/jbackup) */
export function configDir(): string {
  const explicit = nonEmptyEnv('JBACKUP_CONFIG_DIR');
  if (explicit) return path.resolve(explicit);
  const xdg = nonEmptyEnv('XDG_CONFIG_HOME');
  if (xdg) return path.join(xdg, 'jbackup');
  if (process.platform === 'darwin') return path.join(homeDir(), 'Library', 'Application Support', 'jbackup');
  return path.join(homeDir(), '.config', 'jbackup');
}

/** JBACKUP_STATE_DIR, else $XDG_STATE_HOME/jbackup, else ~/.local/state/jbackup (macOS: ~/Library/Application Support/jbackup/state) */
export function stateDir(): string {
  const explicit = nonEmptyEnv('JBACKUP_STATE_DIR');
  if (explicit) return path.resolve(explicit);
  const xdg = nonEmptyEnv('XDG_STATE_HOME');
  if (xdg) return path.join(xdg, 'jbackup');
  if (process.platform === 'darwin') return path.join(homeDir(), 'Library', 'Application Support', 'jbackup', 'state');
  return path.join(homeDir(), '.local', 'state', 'jbackup');
}
