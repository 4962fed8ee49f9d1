/**
 * A real REST server for tests: Debian's `rclone serve restic` on loopback, on a port the OS chooses
 * (`--addr 127.0.0.1:0`; the port is read from its "Serving restic REST API on http://…/" line), or on
 * a given port (a restart on the same port). `-vv` makes it log each request, which the fault test
 * counts. A test CA and server certificate are made with openssl.
 */
import { type ChildProcess, spawn, execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';
import { tmpDir } from './tools.js';

export interface RestServerOptions {
  appendOnly?: boolean;
  tls?: { cert: string; key: string };
  user?: string;
  pass?: string;
  /** a fixed port (restart on the same address) */
  port?: number;
  extraArgs?: string[];
}

export interface RestServer {
  url: string;
  port: number;
  child: ChildProcess;
  /** requests logged so far (with -vv each request is a "… Get|Post|… request" line) */
  log: string[];
  /** resolves once the log has a line matching `re` `count` times */
  waitFor(re: RegExp, count?: number): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => { for (const c of running) try { c.kill('SIGKILL'); } catch { /* gone */ } });

export async function startRestServer(dir: string, o: RestServerOptions = {}): Promise<RestServer> {
  const args = ['serve', 'restic', '--addr', `127.0.0.1:${o.port ?? 0}`, '-vv', '--config', '/dev/null'];
  if (o.appendOnly) args.push('--append-only');
  if (o.tls) args.push('--cert', o.tls.cert, '--key', o.tls.key);
  if (o.user) args.push('--user', o.user, '--pass', o.pass ?? '');
  args.push(...(o.extraArgs ?? []), dir);
  const child = spawn('rclone', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  const log: string[] = [];
  const waiters: { re: RegExp; count: number; resolve: () => void }[] = [];
  let partial = '';
  const check = () => {
    for (const w of [...waiters]) {
      if (log.filter((l) => w.re.test(l)).length >= w.count) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stderr!.on('data', (c: Buffer) => {
    const lines = (partial + c.toString()).split('\n');
    partial = lines.pop()!;
    log.push(...lines);
    check();
  });
  const exited = new Promise<void>((r) => child.once('exit', () => { running.delete(child); r(); }));
  const waitFor = (re: RegExp, count = 1) => new Promise<void>((resolve, reject) => {
    waiters.push({ re, count, resolve });
    check();
    void exited.then(() => reject(new Error(`rclone exited before logging ${re} ×${count}:\n${log.slice(-10).join('\n')}`)));
  });
  await waitFor(/Serving restic REST API on/);
  const m = /Serving restic REST API on \[?(https?:\/\/[^\s\]]+?)\/?\]?$/.exec(log.find((l) => /Serving restic REST API on/.test(l))!);
  if (!m) throw new Error(`cannot read the address from rclone's log: ${log.join('\n')}`);
  const url = `${m[1]}/`;
  const port = Number(new URL(url).port);
  return {
    url, port, child, log, waitFor,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** a CA and a server certificate for 127.0.0.1/localhost, made with openssl */
export async function makeTestCa(): Promise<{ dir: string; ca: string; cert: string; key: string }> {
  const dir = await tmpDir('test-ca');
  const f = (n: string) => path.join(dir, n);
  const ossl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  ossl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=jbackup test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost']);
  await fsp.writeFile(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  ossl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf')]);
  return { dir, ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}
