/** `jbackup forget` on the command line: same decisions as restic, removal, --prune, refusal to remove all. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as path from 'node:path';
import { LocalBackend } from '../../src/backend/local.js';
import { Repository } from '../../src/repo/repository.js';
import { cleanupTmpDirs, interopDescribe, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';

const PW = 'forget-pw';

interopDescribe('restic', 'jbackup forget (CLI) vs restic', () => {
  let repo: string;
  const env = () => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1' });
  beforeAll(async () => {
    repo = path.join(await tmpDir('forget-cli'), 'repo');
    expect((await runJbackup(['init'], { env: env() })).code).toBe(0);
    const r = await Repository.open(new LocalBackend(repo), Buffer.from(PW));
    // 60 daily snapshots on two hosts, with an empty tree (restic's forget does not read trees)
    const tree = 'a'.repeat(64);
    for (let d = 0; d < 60; d++) {
      for (const host of ['h1', 'h2']) {
        const t = new Date(Date.UTC(2025, 0, 1 + d, 3 + (host === 'h2' ? 1 : 0), 0, 0)).toISOString().replace('.000Z', 'Z');
        await r.saveSnapshot({ time: t, tree, paths: ['/data'], hostname: host, username: 'u', tags: d % 10 === 0 ? ['keep'] : undefined });
      }
    }
  });
  afterAll(cleanupTmpDirs);

  const decisions = (out: string) => {
    const groups = JSON.parse(out) as { host: string; keep: { id: string }[] | null; remove: { id: string }[] | null }[];
    return groups.map((g) => ({ host: g.host, keep: (g.keep ?? []).map((s) => s.id).sort(), remove: (g.remove ?? []).map((s) => s.id).sort() }))
      .sort((a, b) => a.host.localeCompare(b.host));
  };

  it('--dry-run --json decisions equal restic 0.14\'s', async () => {
    for (const flags of [['--keep-last', '3'], ['--keep-daily', '7', '--keep-weekly', '4', '--keep-monthly', '2'], ['--keep-within', '10d', '--keep-tag', 'keep']]) {
      const j = await runJbackup(['--json', 'forget', '--dry-run', ...flags], { env: env() });
      expect(j.code, j.stderr).toBe(0);
      const r = await runRestic(['forget', '--dry-run', '--json', ...flags], { repo, password: PW });
      expect(r.code, r.stderr).toBe(0);
      expect(decisions(j.stdout)).toEqual(decisions(r.stdout));
    }
  });

  it('refuses to remove every snapshot of a group without --unsafe-allow-remove-all', async () => {
    const j = await runJbackup(['forget', '--keep-tag', 'nonexistent'], { env: env() });
    expect(j.code).toBe(1);
    expect(j.stderr).toMatch(/refusing to delete all/);
    expect((JSON.parse((await runJbackup(['--json', 'snapshots'], { env: env() })).stdout) as unknown[]).length).toBe(120);
  });

  it('forget removes what the policy says; restic agrees on what is left', async () => {
    const j = await runJbackup(['forget', '--host', 'h1', '--keep-last', '5'], { env: env() });
    expect(j.code, j.stderr).toBe(0);
    const left = JSON.parse((await runRestic(['snapshots', '--json'], { repo, password: PW })).stdout) as { hostname: string }[];
    expect(left.filter((s) => s.hostname === 'h1')).toHaveLength(5);
    expect(left.filter((s) => s.hostname === 'h2')).toHaveLength(60);
  });
});
