/**
 * `jbackup serve` and `jbackup mount` through bin/jbackup: the --json first line, Ctrl-C (SIGINT)
 * releasing the lock with exit 0, --token-file, --tls (self-signed, checked with curl --cacert), the
 * refusal of a non-loopback address without TLS, and a davfs2 mount compared with `diff -r`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fsp, statSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { cleanupTmpDirs, JBACKUP_BIN, runJbackup, tmpDir } from '../helpers/tools.js';
import { hasFuseMount, KDF, makeSource, PW, repoWithSnapshot, runTool, servedPath, withTools } from './helpers.js';

let dir: string;
let repoDir: string;
let src: string;
let env: Record<string, string>;

beforeAll(async () => {
  dir = await tmpDir('serve-cli');
  src = path.join(dir, 'src');
  repoDir = path.join(dir, 'repo');
  await makeSource(src);
  await repoWithSnapshot(repoDir, src);
  env = { JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: `${KDF.N},${KDF.r},${KDF.p}`, JBACKUP_STATE_DIR: path.join(dir, 'state') };
});
afterAll(cleanupTmpDirs);

interface Started { child: ChildProcess; first: string; stderr: () => string; exit: Promise<number> }

/** start bin/jbackup with these arguments and wait for its first stdout line */
async function start(args: string[], extraEnv: Record<string, string> = {}): Promise<Started> {
  const child = spawn(process.execPath, [JBACKUP_BIN, '-r', repoDir, ...args], { env: { ...process.env, ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exit = new Promise<number>((r) => child.on('close', (c) => r(c ?? -1)));
  const rl = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    rl.once('line', resolve);
    void exit.then((c) => reject(new Error(`exited ${c} before printing: ${err}`)));
  });
  return { child, first, stderr: () => err, exit };
}

const locks = async () => (await fsp.readdir(path.join(repoDir, 'locks'))).length;

describe('jbackup serve', () => {
  it('--json prints the URLs and credentials first, holds a lock, and Ctrl-C releases it with exit 0', async () => {
    const s = await start(['serve', '--json']);
    try {
      expect(s.first).toMatch(/^\{"url":"http:\/\/127\.0\.0\.1:\d+\/","username":"jbackup","password":"[A-Za-z0-9_-]{32}","browserUrl":"http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{32}"\}$/);
      const j = JSON.parse(s.first) as { url: string; username: string; password: string; browserUrl: string };
      expect(j.browserUrl).toBe(`${j.url}?token=${j.password}`);
      expect(await locks()).toBe(1);
      const r = await fetch(`${j.url}snapshots/latest/${servedPath(src).split('/').map(encodeURIComponent).join('/')}/a.txt`, { headers: { Authorization: `Basic ${Buffer.from(`${j.username}:${j.password}`).toString('base64')}` } });
      expect(await r.text()).toBe('alpha\n');
      expect((await fetch(j.url)).status).toBe(401);
    } finally {
      s.child.kill('SIGINT');
    }
    expect(await s.exit).toBe(0);
    expect(await locks()).toBe(0);
  });

  it('takes the password from --token-file; SIGTERM stops it too', async () => {
    const tf = path.join(dir, 'token');
    await fsp.writeFile(tf, 'my fixed secret\n');
    const s = await start(['serve', '--json', '--token-file', tf, '--listen', '127.0.0.1:0']);
    const j = JSON.parse(s.first) as { url: string; password: string };
    expect(j.password).toBe('my fixed secret');
    expect((await fetch(j.url, { method: 'OPTIONS', headers: { Authorization: `Basic ${Buffer.from('jbackup:my fixed secret').toString('base64')}` } })).status).toBe(200);
    s.child.kill('SIGTERM');
    expect(await s.exit).toBe(0);
  });

  it('refuses a non-loopback address without --tls in one line, exit 1', async () => {
    const r = await runJbackup(['-r', repoDir, 'serve', '--listen', '0.0.0.0:0'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Fatal: refusing to serve on 0\.0\.0\.0 without --tls[^\n]*\n$/);
    const bad = await runJbackup(['-r', repoDir, 'serve', '--listen', 'nonsense'], { env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^Fatal: invalid --listen "nonsense"/);
    expect(await locks()).toBe(0);
  });

  withTools(['curl'], 'with curl', () => {
    it('--tls writes a self-signed certificate (key 0600) that curl --cacert accepts', async () => {
      const s = await start(['serve', '--json', '--tls']);
      try {
        const j = JSON.parse(s.first) as { url: string; username: string; password: string };
        expect(j.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
        const cert = /TLS certificate \(self-signed\): (\S+)/.exec(s.stderr())?.[1] ?? path.join(dir, 'state', 'serve-tls', 'cert.pem');
        expect(existsSync(cert)).toBe(true);
        expect(statSync(path.join(path.dirname(cert), 'key.pem')).mode & 0o777).toBe(0o600);
        const ok = await runTool('curl', ['-sS', '--cacert', cert, '-u', `${j.username}:${j.password}`, '-X', 'PROPFIND', '-H', 'Depth: 0', '-o', '/dev/null', '-w', '%{http_code}', j.url]);
        expect(ok.stderr).toBe('');
        expect(ok.stdout).toBe('207');
        const untrusted = await runTool('curl', ['-sS', '-o', '/dev/null', j.url]);
        expect(untrusted.code).not.toBe(0);
      } finally {
        s.child.kill('SIGINT');
      }
      expect(await s.exit).toBe(0);
    });
  });
});

withTools(['mount.davfs', 'diff'], 'jbackup mount (davfs2)', () => {
  it('mounts the served repository: diff -r against the source, unmounted on Ctrl-C', async () => {
    const mnt = path.join(dir, 'mnt');
    await fsp.mkdir(mnt);
    const s = await start(['mount', '--foreground', mnt]);
    let unmounted = false;
    try {
      expect(s.first).toBe(`mounted at ${mnt} with davfs2 (${s.first.split('(')[1]!.split(')')[0]})`);
      const d = await runTool('diff', ['-r', src, path.join(mnt, 'snapshots', 'latest', servedPath(src))]);
      expect(d.stdout + d.stderr).toBe('');
      expect(d.code).toBe(0);
    } finally {
      s.child.kill('SIGINT');
      unmounted = (await s.exit) === 0;
    }
    expect(unmounted).toBe(true);
    expect((await fsp.readFile('/proc/mounts', 'utf8')).includes(mnt)).toBe(false);
  });

  it('without --foreground returns once mounted; umount stops the background server and its lock', async () => {
    const mnt = path.join(dir, 'mnt-bg');
    await fsp.mkdir(mnt);
    const r = await runJbackup(['-r', repoDir, '--json', 'mount', mnt], { env });
    try {
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as { mountpoint: string }).mountpoint).toBe(mnt);
      expect(await fsp.readFile(path.join(mnt, 'snapshots', 'latest', servedPath(src), 'a.txt'), 'utf8')).toBe('alpha\n');
      expect(await locks()).toBe(1);
    } finally {
      // whatever failed: the unmount also ends the background server
      expect((await runTool('umount', [mnt])).code).toBe(0);
    }
    // the server looks every 2 s; wait for it to notice (bounded, no timing asserted)
    for (let i = 0; i < 600 && (await locks()) > 0; i++) await new Promise((res) => setTimeout(res, 100));
    expect(await locks()).toBe(0);
  });
}, hasFuseMount);
