/** Shared set-up for the schedule tests: an isolated HOME, config and state dir per test file. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'vitest';
import { tmpDir } from '../helpers/tools.js';

export interface Sandbox {
  root: string;
  home: string;
  config: string;
  state: string;
  env: Record<string, string>;
}

export async function sandbox(prefix: string): Promise<Sandbox> {
  const root = await tmpDir(prefix);
  const home = path.join(root, 'home');
  const config = path.join(home, '.config', 'jbackup');
  const state = path.join(home, '.local', 'state', 'jbackup');
  mkdirSync(config, { recursive: true });
  const env: Record<string, string> = {
    HOME: home,
    JBACKUP_CONFIG_DIR: config,
    JBACKUP_STATE_DIR: state,
    // "" = none: keeps the tests away from this machine's user manager and its own directories
    JBACKUP_SYSTEMCTL: '',
    XDG_CONFIG_HOME: '',
    XDG_STATE_HOME: '',
    JBACKUP_SYSTEMD_USER_DIR: '',
    JBACKUP_LAUNCHD_DIR: '',
    JBACKUP_KDF_PARAMS: '1024,8,1',
    TZ: 'UTC',
  };
  return { root, home, config, state, env };
}

export function writeProfiles(sb: Sandbox, toml: string): void {
  writeFileSync(path.join(sb.config, 'profiles.toml'), toml);
}

/** TOML string literal */
export const q = (s: string) => JSON.stringify(s);

export const SYSTEMD_ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p)) ?? null;

/** describe() that needs systemd-analyze: skipped with a note when missing, failing when JBACKUP_REQUIRE_INTEROP=1 */
export function systemdDescribe(name: string, fn: () => void): void {
  if (SYSTEMD_ANALYZE) describe(name, fn);
  else if (process.env['JBACKUP_REQUIRE_INTEROP'] === '1') {
    describe(name, () => it('requires systemd-analyze', () => { throw new Error('systemd-analyze is required (JBACKUP_REQUIRE_INTEROP=1) but not found'); }));
  } else {
    console.warn(`[interop] skipping "${name}": systemd-analyze not found (set JBACKUP_REQUIRE_INTEROP=1 to make this fail)`);
    describe.skip(name, fn);
  }
}

export function python3(): string | null {
  const r = spawnSync('python3', ['-c', 'import plistlib'], { encoding: 'utf8' });
  return r.status === 0 ? 'python3' : null;
}
