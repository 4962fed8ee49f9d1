/**
 * jbackup and restic 0.14 on one repository behind a real REST server (`rclone serve restic` on
 * loopback) and through `rclone:` (each tool starting its own `rclone serve restic --stdio`): the
 * interop tree is snapshotted and restored identically by both tools, and restic check --read-data
 * accepts what jbackup wrote. Also: the rclone child's lifetime (no orphan after SIGTERM) and a
 * missing rclone program.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn, execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { compareTrees, makeInteropTree } from '../helpers/fstree.js';
import { cleanupTmpDirs, interopDescribe, JBACKUP_BIN, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';
import { startRestServer, type RestServer } from '../helpers/restserver.js';

const PASSWORD = 'rest-interop';

/** restic 0.14's known losses on restore (non-UTF-8 link targets), as in test/interop/restic.test.ts */
const resticLossy = (d: string) => /sym-nonutf8|target-/.test(d) && /target/.test(d);

interopDescribe('rclone', 'rest: and rclone: interop', () => {
  let base: string;
  let src: string;
  let server: RestServer;
  beforeAll(async () => {
    base = await tmpDir('rest-interop');
    src = path.join(base, 'src');
    await makeInteropTree(src);
    server = await startRestServer(path.join(base, 'srv'), { user: 'me', pass: 'pw:secret' });
  }, 300_000);
  afterAll(async () => {
    await server?.stop();
    await cleanupTmpDirs();
  });

  const cases: [string, () => string][] = [
    ['rest:', () => `rest:http://me:${encodeURIComponent('pw:secret')}@127.0.0.1:${server.port}/jb/`],
    ['rclone:', () => `rclone:${path.join(base, 'viarclone')}`],
  ];
  for (const [kind, loc] of cases) {
    interopDescribe('restic', `${kind} jbackup and restic share one repository`, () => {
      const jb = async (args: string[], cwd?: string) => {
        const r = await runJbackup(args, { env: { JBACKUP_REPOSITORY: loc(), JBACKUP_PASSWORD: PASSWORD, JBACKUP_KDF_PARAMS: '16384,8,1' }, cwd });
        if (r.code !== 0) throw new Error(`jbackup ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
        return r;
      };
      const rs = async (args: string[], cwd?: string) => {
        const r = await runRestic(args, { repo: loc(), password: PASSWORD, cwd });
        if (r.code !== 0) throw new Error(`restic ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
        return r;
      };

      it('init, snapshot and restore of the interop tree are identical to the source; no secret in the output', async () => {
        const init = await jb(['init']);
        expect(init.stdout + init.stderr).not.toMatch(/pw:secret|pw%3Asecret/);
        const snap = JSON.parse((await jb(['--json', 'snapshot', '.'], src)).stdout.trim().split('\n').pop()!) as Record<string, number | string>;
        expect(snap['message_type']).toBe('summary');
        expect(snap['files_new']).toBeGreaterThan(20);
        const out = path.join(base, `${kind}-jb-restore`);
        await jb(['restore', 'latest', '--target', out, '--verify']);
        expect(await compareTrees(src, out, { ignore: ['atime', 'root'] })).toEqual([]);
      });

      it(`restic -r ${kind} check --read-data accepts jbackup's repository and restores it identically`, async () => {
        const check = await rs(['check', '--read-data']);
        expect(check.stdout + check.stderr).toMatch(/no errors were found/);
        expect(check.stdout + check.stderr).not.toMatch(/hint|error for|orphan/i);
        const out = path.join(base, `${kind}-restic-restore`);
        await rs(['restore', 'latest', '--target', out]);
        expect((await compareTrees(src, out, { ignore: ['atime', 'root'] })).filter((d) => !resticLossy(d))).toEqual([]);
      });

      it('jbackup restores what restic wrote there', async () => {
        const added = path.join(src, 'added-by-restic.txt');
        await fsp.writeFile(added, 'restic wrote this\n'.repeat(5000));
        try {
          const r = await rs(['backup', '--json', '.'], src);
          const rid = JSON.parse(r.stdout.trim().split('\n').filter((l) => l.includes('"summary"')).pop()!)['snapshot_id'] as string;
          const out = path.join(base, `${kind}-jb-from-restic`);
          await jb(['restore', rid, '--target', out, '--verify']);
          expect((await compareTrees(src, out, { ignore: ['atime', 'root'] })).filter((d) => !resticLossy(d))).toEqual([]);
        } finally {
          await fsp.rm(added);
        }
      });
    });
  }

  it('rclone missing from PATH: one clear line, exit 1', async () => {
    const r = await runJbackup(['-r', `rclone:${path.join(base, 'x')}`, 'snapshots'], { env: { PATH: '/nonexistent', JBACKUP_PASSWORD: PASSWORD } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('Fatal: rclone: program "rclone" was not found in PATH: install rclone or name it with --rclone-program\n');
  });

  it('rclone failing to start: its own error on the one line, exit 1', async () => {
    const r = await runJbackup(['-r', 'rclone:nosuchremote:path', 'snapshots'], { env: { JBACKUP_PASSWORD: PASSWORD } });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^Fatal: rclone: rclone exited with status 1 before answering; rclone said: .*nosuchremote/);
  });

  it('SIGTERM during a snapshot over rclone: the lock is removed through rclone, then the child is stopped (no orphan)', async () => {
    const repo = path.join(base, 'sigterm-repo');
    const env = { ...process.env, JBACKUP_REPOSITORY: `rclone:${repo}`, JBACKUP_PASSWORD: PASSWORD, JBACKUP_KDF_PARAMS: '16384,8,1' };
    const init = await runJbackup(['init'], { env });
    expect(init.code).toBe(0);
    const big = path.join(base, 'sigterm-src');
    await fsp.mkdir(big);
    // incompressible and large enough that the snapshot is still uploading when it is stopped
    const fh = await fsp.open(path.join(big, 'big'), 'w');
    const { randomBytes } = await import('node:crypto');
    for (let i = 0; i < 40; i++) await fh.write(randomBytes(4 << 20));
    await fh.close();
    const child = spawn(process.execPath, [JBACKUP_BIN, '-v', 'snapshot', big], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    // wait until a pack is stored (the lock is taken and the snapshot uploading), then find the rclone child
    const locks = path.join(repo, 'locks');
    for (;;) {
      const l = await fsp.readdir(path.join(repo, 'data'), { recursive: true }).catch(() => []);
      if (l.some((f) => /[0-9a-f]{64}$/.test(String(f)))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await fsp.readdir(locks)).length).toBe(1);
    const rclonePid = Number(execFileSync('pgrep', ['-P', String(child.pid), 'rclone']).toString().trim());
    expect(rclonePid).toBeGreaterThan(0);
    child.kill('SIGTERM');
    expect(await exited).toBe(130);
    expect(err).toMatch(/signal SIGTERM received/);
    expect(await fsp.readdir(locks)).toEqual([]);
    const alive = (() => { try { process.kill(rclonePid, 0); return true; } catch { return false; } })();
    if (alive) {
      // a zombie reaped by init a moment later is not an orphan: it must not be running
      const stat = execFileSync('ps', ['-o', 'stat=', '-p', String(rclonePid)]).toString().trim();
      expect(stat).toMatch(/^Z|^$/);
    }
  }, 120_000);
});
