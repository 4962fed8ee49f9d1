/**
 * Append-only repositories: a laptop's server (`rclone serve restic --append-only`) lets snapshot,
 * check and restore work and refuses deletions; forget/prune fail with one line and delete nothing;
 * locks are deleted as usual there (rclone, like rest-server, lets locks/ be deleted in append-only
 * mode), by jbackup and by restic; an admin server on the same directory prunes afterwards.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { compareTrees, makeInteropTree } from '../helpers/fstree.js';
import { cleanupTmpDirs, findTool, interopDescribe, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';
import { startRestServer, type RestServer } from '../helpers/restserver.js';

const PASSWORD = 'append-only';

async function listing(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir, { recursive: true })).map(String).sort();
}

interopDescribe('rclone', 'append-only repositories (rclone serve restic --append-only)', () => {
  let base: string;
  let store: string;
  let src: string;
  let laptop: RestServer;
  let admin: RestServer;
  const jb = (server: () => RestServer, user: string) => (args: string[], cwd?: string) => runJbackup(args, {
    env: { JBACKUP_REPOSITORY: `rest:http://${user}:pw-${user}@127.0.0.1:${server().port}/repo/`, JBACKUP_PASSWORD: PASSWORD, JBACKUP_KDF_PARAMS: '16384,8,1' }, cwd,
  });
  const onLaptop = jb(() => laptop, 'laptop');
  const asAdmin = jb(() => admin, 'admin');
  const ok = async (p: Promise<{ code: number; stderr: string; stdout: string }>) => {
    const r = await p;
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
    return r;
  };

  beforeAll(async () => {
    base = await tmpDir('append-only');
    store = path.join(base, 'store');
    src = path.join(base, 'src');
    await makeInteropTree(src);
    // one storage directory, two servers: the laptop's credential reaches only the append-only one
    laptop = await startRestServer(store, { appendOnly: true, user: 'laptop', pass: 'pw-laptop' });
    admin = await startRestServer(store, { user: 'admin', pass: 'pw-admin' });
  }, 300_000);
  afterAll(async () => {
    await Promise.all([laptop?.stop(), admin?.stop()]);
    await cleanupTmpDirs();
  });

  it('init, two snapshots, check and restore work through the append-only server; no lock is left', async () => {
    await ok(onLaptop(['init']));
    await ok(onLaptop(['snapshot', '.'], src));
    await fsp.writeFile(path.join(src, 'second.txt'), 'second snapshot\n'.repeat(3000));
    await ok(onLaptop(['snapshot', '.'], src));
    const c = await ok(onLaptop(['check', '--read-data']));
    expect(c.stdout).toMatch(/no errors were found/);
    const out = path.join(base, 'restored');
    await ok(onLaptop(['restore', 'latest', '--target', out, '--verify']));
    expect(await compareTrees(src, out, { ignore: ['atime', 'root'] })).toEqual([]);
    expect(await fsp.readdir(path.join(store, 'repo', 'locks'))).toEqual([]);
  });

  it('forget --prune, prune and forget exit 1 with one line each and delete nothing', async () => {
    const before = await listing(path.join(store, 'repo'));
    const f = await onLaptop(['forget', '--keep-last', '1', '--prune']);
    expect(f.code).toBe(1);
    const fl = f.stderr.trim().split('\n');
    expect(fl).toHaveLength(1);
    expect(fl[0]).toMatch(/^Fatal: repository is append-only: the server refused to delete snapshots\/[0-9a-f]{64} \(HTTP 403\)$/);
    const p = await onLaptop(['prune']);
    expect(p.code).toBe(1);
    expect(p.stderr).toBe('Fatal: repository is append-only: the server refuses deletions (HTTP 403 to a DELETE); prune needs a server or credential that may delete\n');
    const g = await onLaptop(['forget', '--keep-last', '1']);
    expect(g.code).toBe(1);
    expect(g.stderr.trim().split('\n')).toHaveLength(1);
    // the listing is unchanged: every snapshot, index and pack is still there, and the locks were removed
    expect(await listing(path.join(store, 'repo'))).toEqual(before);
    const snaps = JSON.parse((await ok(onLaptop(['--json', 'snapshots']))).stdout) as unknown[];
    expect(snaps).toHaveLength(2);
  });

  interopDescribe('restic', 'restic on the same append-only server', () => {
    // (restic's forget there is refused too, after ~50 s of retrying the 403s: not run here)
    it('restic backs up there and removes its lock (locks/ may be deleted in append-only mode)', async () => {
      const repo = `rest:http://laptop:pw-laptop@127.0.0.1:${laptop.port}/repo/`;
      const b = await runRestic(['backup', '.'], { repo, password: PASSWORD, cwd: src });
      expect(b.code, b.stderr).toBe(0);
      expect(await fsp.readdir(path.join(store, 'repo', 'locks'))).toEqual([]);
    });
  });

  it('the admin server on the same directory prunes afterwards; the repository stays sound', async () => {
    const r = await ok(asAdmin(['forget', '--keep-last', '1', '--prune']));
    expect(r.stdout).toMatch(/remove \d+ snapshots/);
    const snaps = JSON.parse((await ok(asAdmin(['--json', 'snapshots']))).stdout) as unknown[];
    expect(snaps).toHaveLength(1);
    if (findTool('restic')) {
      const rc = await runRestic(['check', '--read-data'], { repo: `rest:http://admin:pw-admin@127.0.0.1:${admin.port}/repo/`, password: PASSWORD });
      expect(rc.code, rc.stderr).toBe(0);
    }
    expect((await ok(asAdmin(['check', '--read-data']))).stdout).toMatch(/no errors were found/);
    // and the laptop goes on adding snapshots
    await ok(onLaptop(['snapshot', '.'], src));
    expect(JSON.parse((await ok(onLaptop(['--json', 'snapshots']))).stdout)).toHaveLength(2);
  });
});
