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
    expect(line).toBe(`':' //; exec node ${NODE_FLAGS.join(' ')} "$0" "$@"`);
    expect(version(JBACKUP_BIN).node_flags).toEqual(NODE_FLAGS);
  });

  it('works through a symlink (npm link, global installs)', () => {
    const link = path.join(tmp, 'jbackup');
    symlinkSync(JBACKUP_BIN, link);
    const v = version(link);
    expect(v.node_flags).toEqual(NODE_FLAGS);
    expect(v.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('also runs as `node bin/jbackup` (without the flags)', () => {
    const r = spawnSync(process.execPath, [JBACKUP_BIN, '--json', 'version'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).node_flags).toEqual([]);
  });
});
