/**
 * Faults of a real REST server: `rclone serve restic` killed (SIGKILL) in the middle of a snapshot's
 * uploads, when its log shows the Nth pack upload started. Restarted on the same port and directory
 * once jbackup reports a retry: the snapshot completes and restic check --read-data accepts the
 * repository. Not restarted: the snapshot fails cleanly (one line, exit 1), and after a restart the
 * repository still passes restic check. No sleeps for synchronisation: the server's log and
 * jbackup's -v retry lines are the events waited for.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { compareTrees } from '../helpers/fstree.js';
import { cleanupTmpDirs, findTool, interopDescribe, JBACKUP_BIN, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';
import { startRestServer, type RestServer } from '../helpers/restserver.js';

const PASSWORD = 'faults';

interopDescribe('rclone', 'rest: server killed mid-snapshot', () => {
  let base: string;
  let src: string;
  const servers: RestServer[] = [];
  beforeAll(async () => {
    base = await tmpDir('rest-faults');
    src = path.join(base, 'src');
    await fsp.mkdir(src);
    // 40 MiB that does not compress: ten 4 MiB packs or more
    for (let i = 0; i < 5; i++) await fsp.writeFile(path.join(src, `f${i}`), randomBytes(8 << 20));
  }, 120_000);
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop('SIGKILL')));
    await cleanupTmpDirs();
  });

  /** run a jbackup snapshot; kill the server once `killAfter` pack uploads started; `onRetry` once jbackup reports a retry */
  async function snapshotThroughKill(store: string, restart: boolean) {
    let server = await startRestServer(store);
    servers.push(server);
    const loc = `rest:http://127.0.0.1:${server.port}/repo/`;
    const env = { ...process.env, JBACKUP_REPOSITORY: loc, JBACKUP_PASSWORD: PASSWORD, JBACKUP_KDF_PARAMS: '16384,8,1' };
    expect((await runJbackup(['init'], { env })).code).toBe(0);
    const child = spawn(process.execPath, [JBACKUP_BIN, '-v', '--pack-size', '4', 'snapshot', '.'], { env, cwd: src, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    let retried: () => void = () => {};
    const firstRetry = new Promise<void>((r) => { retried = r; });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (/^rest: retry \d+\/\d+ of /m.test(stderr)) retried();
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await server.waitFor(/POST \/repo\/data\/[0-9a-f]{64}/, 3);
    const port = server.port;
    await server.stop('SIGKILL');
    await firstRetry;
    if (restart) {
      server = await startRestServer(store, { port });
      servers.push(server);
    }
    const code = await exited;
    return { code, stderr, stdout, loc, server, port };
  }

  it('restarted on the same port: the snapshot retries, completes, restores identically and passes restic check --read-data', async () => {
    const store = path.join(base, 'store-restart');
    const r = await snapshotThroughKill(store, true);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^rest: retry 1\/9 of (save|load|stat) /m);
    expect(r.stdout).toMatch(/snapshot [0-9a-f]{8} saved/);
    const out = path.join(base, 'restored');
    const rr = await runJbackup(['restore', 'latest', '--target', out, '--verify'], { env: { JBACKUP_REPOSITORY: r.loc, JBACKUP_PASSWORD: PASSWORD } });
    expect(rr.code, rr.stderr).toBe(0);
    expect(await compareTrees(src, out, { ignore: ['atime', 'root'] })).toEqual([]);
    if (findTool('restic')) {
      const c = await runRestic(['check', '--read-data'], { repo: r.loc, password: PASSWORD });
      expect(c.code, c.stdout + c.stderr).toBe(0);
      expect(c.stdout).toMatch(/no errors were found/);
    }
  }, 300_000);

  it('not restarted: the snapshot gives up after its retries with one line and exit 1; after a restart the repository passes restic check', async () => {
    const store = path.join(base, 'store-dead');
    const r = await snapshotThroughKill(store, false);
    expect(r.code).toBe(1);
    const fatal = r.stderr.split('\n').filter((l) => l.startsWith('Fatal: '));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatch(/giving up after 10 attempts \(\d+\.\ds\): .*(ECONNREFUSED|closed|reset)/);
    const server = await startRestServer(store, { port: r.port });
    servers.push(server);
    if (findTool('restic')) {
      // the failed snapshot's lock is still there (the server was gone when it ended): stale (same
      // host, its process gone), so restic unlock removes it before restic 0.14's check (exclusive lock)
      const u = await runRestic(['unlock'], { repo: r.loc, password: PASSWORD });
      expect(u.code, u.stderr).toBe(0);
      expect(u.stdout).toMatch(/successfully removed/);
      const c = await runRestic(['check', '--read-data'], { repo: r.loc, password: PASSWORD });
      if (c.code !== 0) console.log(c.stdout, c.stderr);
      expect(c.code, c.stdout + c.stderr).toBe(0);
      expect(c.stdout).toMatch(/no errors were found/);
    }
  }, 300_000);
});
