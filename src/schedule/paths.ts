/** Where profiles, status records, unit files and plists live, and how the scheduler calls the CLI. */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../util/nodeflags.js';
import { configDir, homeDir, nonEmptyEnv as env, stateDir } from '../util/paths.js';

export function profilesFile(): string {
  return path.join(configDir(), 'profiles.toml');
}

/** JBACKUP_SYSTEMD_USER_DIR, else $XDG_CONFIG_HOME/systemd/user, else ~/.config/systemd/user */
export function systemdUserDir(): string {
  const explicit = env('JBACKUP_SYSTEMD_USER_DIR');
  if (explicit) return path.resolve(explicit);
  const xdg = env('XDG_CONFIG_HOME');
  return path.join(xdg ?? path.join(homeDir(), '.config'), 'systemd', 'user');
}

/** JBACKUP_LAUNCHD_DIR, else ~/Library/LaunchAgents */
export function launchdDir(): string {
  const explicit = env('JBACKUP_LAUNCHD_DIR');
  if (explicit) return path.resolve(explicit);
  return path.join(homeDir(), 'Library', 'LaunchAgents');
}

export function launchdLogDir(): string {
  return path.join(homeDir(), 'Library', 'Logs', 'jbackup');
}

/** Absolute [node, flags…, bin/jbackup]: what a unit or a plist runs (never a PATH lookup). */
export function cliCommand(): string[] {
  const bin = fileURLToPath(new URL('../../../bin/jbackup', import.meta.url));
  if (!existsSync(bin)) throw new Error(`cannot find the jbackup launcher at ${bin}`);
  return [process.execPath, ...NODE_FLAGS, bin];
}

/** environment a scheduled run needs to use the same profiles and state as the installer (never a password) */
export function scheduledEnvironment(): Record<string, string> {
  return { JBACKUP_CONFIG_DIR: configDir(), JBACKUP_STATE_DIR: stateDir() };
}
