import { describe, expect, it, afterAll } from 'vitest';
import { readFileSync, symlinkSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { NODE_FLAGS } from '../src/util/nodeflags.js';
import { JBACKUP_BIN } from './helpers/tools.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'jbackup-launcher-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function version(cmd: string): { node_flags: string[]; version: string } {
  // the launcher execs `node` from PATH: put this test's node first
  const env = { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env['PATH'] ?? ''}` };
  const r = spawnSync(cmd, ['--json', 'version'], { encoding: 'utf8', env });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim()) as { node_flags: string[]; version: string };
}

describe('bin/jbackup launcher', () => {
  it('starts node with the flags of src/util/nodeflags.ts', () => {
    const line = readFileSync(JBACKUP_BIN, 'utf8').split('\n')[1]!;
    expect(line).toBe(`':' //; [ -n "\${NODE_EXTRA_CA_CERTS-}" ] && export JBACKUP_NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"; NODE_EXTRA_CA_CERTS= exec node ${NODE_FLAGS.join(' ')} "$0" "$@"`);
    expect(version(JBACKUP_BIN).node_flags).toEqual(NODE_FLAGS);
  });

  it('works through a symlink (npm link, global installs)', () => {
    const link = path.join(tmp, 'jbackup');
    symlinkSync(JBACKUP_BIN, link);
    const v = version(link);
    expect(v.node_flags).toEqual(NODE_FLAGS);
    expect(v.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('keeps node from loading NODE_EXTRA_CA_CERTS at start-up, and gives it back to child processes', () => {
    const out = path.join(tmp, 'child-env');
    const repo = path.join(tmp, 'repo-ca');
    for (const ca of ['/nonexistent/ca.pem', '']) {
      rmSync(repo, { recursive: true, force: true });
      const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env['PATH'] ?? ''}`, JBACKUP_KDF_PARAMS: '1024,8,1' };
      if (ca) env['NODE_EXTRA_CA_CERTS'] = ca;
      else delete env['NODE_EXTRA_CA_CERTS'];
      // a password command is a child process: it reports what it was given
      const cmd = `sh -c 'printf "%s|%s" "\${NODE_EXTRA_CA_CERTS-unset}" "\${JBACKUP_NODE_EXTRA_CA_CERTS-unset}" > ${out}; echo pw'`;
      const r = spawnSync(JBACKUP_BIN, ['-r', repo, '--password-command', cmd, 'init'], { encoding: 'utf8', env });
      expect(r.status, r.stderr).toBe(0);
      // node warns at start-up about an unreadable NODE_EXTRA_CA_CERTS: it did not read it
      expect(r.stderr).not.toMatch(/extra certs/i);
      expect(readFileSync(out, 'utf8')).toBe(ca ? `${ca}|unset` : 'unset|unset');
    }
  });

  it('also runs as `node bin/jbackup` (without the flags)', () => {
    const r = spawnSync(process.execPath, [JBACKUP_BIN, '--json', 'version'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).node_flags).toEqual([]);
  });
});
