/**
 * A profile run goes through the operations layer and closes every backend it opens (before, the
 * check step opened a third repository and never closed it): run in-process with openBackend
 * wrapped to count opens and closes.
 */
import { afterAll, expect, it, vi } from 'vitest';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Backend } from '../../src/backend/backend.js';
import { cleanupTmpDirs } from '../helpers/tools.js';
import { q, sandbox, writeProfiles } from './util.js';

const opened: Backend[] = [];
const closed = new Set<Backend>();
vi.mock('../../src/backend/location.js', async (orig) => {
  const m = await orig<typeof import('../../src/backend/location.js')>();
  return {
    ...m,
    openBackend: (...a: Parameters<typeof m.openBackend>) => {
      const b = m.openBackend(...a);
      const close = b.close.bind(b);
      b.close = async () => { closed.add(b); await close(); };
      opened.push(b);
      return b;
    },
  };
});

afterAll(cleanupTmpDirs);

it('snapshot, forget, prune and check: every backend opened is closed, and the run succeeds', async () => {
  const sb = await sandbox('run-ops');
  Object.assign(process.env, sb.env);
  const repo = path.join(sb.root, 'repo');
  const src = path.join(sb.root, 'src');
  mkdirSync(src);
  writeFileSync(path.join(src, 'a.txt'), 'a file\n'.repeat(100));
  const pw = path.join(sb.root, 'pw');
  writeFileSync(pw, 'pw\n');
  chmodSync(pw, 0o600);
  const { initRepository, closeRepository } = await import('../../src/ops/repository.js');
  await closeRepository(await initRepository(repo, 'pw', { kdf: { N: 1024, r: 8, p: 1 } }));
  opened.length = 0;
  closed.clear();
  writeProfiles(sb, `
[profiles.p]
repository = ${q(repo)}
password-file = ${q(pw)}
sources = [${q(src)}]

[profiles.p.retention]
keep-last = 1

[profiles.p.prune]
every = "always"

[profiles.p.check]
every = "always"
`);
  const { runProfile } = await import('../../src/schedule/run.js');
  const lines: string[] = [];
  const first = await runProfile('p', { log: (l) => lines.push(l) });
  expect(first.exitCode, lines.join('\n')).toBe(0);
  const second = await runProfile('p', { log: (l) => lines.push(l) });
  expect(second.exitCode, lines.join('\n')).toBe(0);
  expect(second.status!.snapshotsRemoved).toBe(1);
  expect(second.status!.checked).toBe(true);
  // two runs, each: one backend for the snapshot, one for forget + prune + check
  expect(opened).toHaveLength(4);
  expect(opened.filter((b) => !closed.has(b))).toHaveLength(0);
});
