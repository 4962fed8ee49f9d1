/**
 * `node dist/bench/serve.js`: the figures of `jbackup serve` (README "Browse and mount").
 *   list      PROPFIND Depth 1 of a directory of 10,000 files: its tree not cached (after one listing of
 *             another such folder, which is reported too: V8 compiles the code on the way), then
 *             cached (median of 5)
 *   first     time to the first byte of a ranged GET at a random offset of a large file (median of 5,
 *             each at a new offset: no blob cached)
 *   stream    a whole-file GET, bytes/s, against `jbackup restore` of the same file
 * on a local repository and on `jotta:` through the loopback emulator (TLS).
 *
 * Usage: node dist/bench/serve.js [--size-mib 1024] [--jotta-mib 256] [--files 10000] [--no-jotta] [--dir DIR] [--keep]
 * Results: a table on stdout and bench/results/serve.json.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, promises as fsp, writeFileSync, createWriteStream } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { randomFillSync } from 'node:crypto';
import { request } from 'node:http';

const ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'jbackup');

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
}
const flag = (name: string) => process.argv.includes(`--${name}`);

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; ms: number; out: string; err: string }> {
  const t = performance.now();
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    c.on('close', (code) => resolve({ code: code ?? 1, ms: performance.now() - t, out, err }));
  });
}

async function must(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const r = await run(args, env);
  if (r.code !== 0) throw new Error(`jbackup ${args.join(' ')}: ${r.err}`);
  return r.ms;
}

async function makeData(dir: string, files: number, sizeMiB: number): Promise<void> {
  for (const d of ['many', 'other']) {
    const many = path.join(dir, d);
    mkdirSync(many, { recursive: true });
    for (let i = 0; i < files; i++) writeFileSync(path.join(many, `${d}-${String(i).padStart(5, '0')}.txt`), `${d} ${i}\n`);
  }
  const ws = createWriteStream(path.join(dir, 'big.bin'));
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < sizeMiB; i++) {
    randomFillSync(chunk);
    if (!ws.write(chunk)) await new Promise<void>((r) => ws.once('drain', () => r()));
  }
  await new Promise<void>((r) => ws.end(() => r()));
}

interface Served { url: string; auth: string; stop(): Promise<void> }

async function startServe(repo: string, env: NodeJS.ProcessEnv): Promise<Served> {
  const c = spawn(process.execPath, [BIN, '-r', repo, 'serve', '--json'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: c.stdout }).once('line', resolve);
    c.once('close', (code) => reject(new Error(`serve exited ${code}`)));
  });
  const j = JSON.parse(line) as { url: string; username: string; password: string };
  return {
    url: j.url, auth: `Basic ${Buffer.from(`${j.username}:${j.password}`).toString('base64')}`,
    stop: () => new Promise((r) => { c.once('close', () => r()); c.kill('SIGINT'); }),
  };
}

/** one request: ms to the response head, ms to the first body byte, ms to the end, bytes */
function timed(s: Served, method: string, rel: string, headers: Record<string, string> = {}): Promise<{ head: number; first: number; total: number; bytes: number; status: number }> {
  const u = new URL(rel, s.url);
  const t = performance.now();
  return new Promise((resolve, reject) => {
    const r = request(u, { method, headers: { Authorization: s.auth, ...headers } }, (res) => {
      const head = performance.now() - t;
      let first = -1;
      let bytes = 0;
      res.on('data', (d: Buffer) => { if (first < 0) first = performance.now() - t; bytes += d.length; });
      res.on('end', () => resolve({ head, first, total: performance.now() - t, bytes, status: res.statusCode! }));
    });
    r.on('error', reject);
    r.end();
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const enc = (p: string) => p.split('/').map(encodeURIComponent).join('/');

interface Row { where: string; listFirstMs: number; listColdMs: number; listWarmMs: number; firstByteMs: number; streamMBs: number; restoreMBs: number; ratio: number; sizeMiB: number; files: number }

async function measure(where: string, repo: string, env: NodeJS.ProcessEnv, data: string, files: number, sizeMiB: number, work: string): Promise<Row> {
  const s = await startServe(repo, env);
  try {
    const base = `snapshots/latest/${enc(path.resolve(data).split(path.sep).filter(Boolean).join('/'))}`;
    // the server's first request pays for V8 compiling the code on the way (its own figure); the
    // listing figure is then a folder whose tree is not cached yet, in a server already running
    const start = await timed(s, 'PROPFIND', `${base}/other/`, { Depth: '1' });
    const cold = await timed(s, 'PROPFIND', `${base}/many/`, { Depth: '1' });
    if (cold.status !== 207 || start.status !== 207) throw new Error(`PROPFIND: ${cold.status}`);
    const warm: number[] = [];
    for (let i = 0; i < 5; i++) warm.push((await timed(s, 'PROPFIND', `${base}/many/`, { Depth: '1' })).total);
    const size = sizeMiB << 20;
    const firsts: number[] = [];
    for (let i = 0; i < 5; i++) {
      const off = Math.floor(((i + 0.5) / 5) * (size - 4096));
      const r = await timed(s, 'GET', `${base}/big.bin`, { Range: `bytes=${off}-${off + 4095}` });
      if (r.status !== 206) throw new Error(`range: ${r.status}`);
      firsts.push(r.first);
    }
    const whole = await timed(s, 'GET', `${base}/big.bin`);
    if (whole.bytes !== size) throw new Error(`GET returned ${whole.bytes} bytes`);
    await s.stop();
    const target = path.join(work, `restore-${where}`);
    const rms = await must(['-r', repo, 'restore', 'latest', '--target', target, '--include', `${path.resolve(data)}/big.bin`], env);
    await fsp.rm(target, { recursive: true, force: true });
    const streamMBs = size / 1e6 / (whole.total / 1000);
    const restoreMBs = size / 1e6 / (rms / 1000);
    return { where, listFirstMs: start.total, listColdMs: cold.total, listWarmMs: median(warm), firstByteMs: median(firsts), streamMBs, restoreMBs, ratio: streamMBs / restoreMBs, sizeMiB, files };
  } catch (e) {
    await s.stop().catch(() => {});
    throw e;
  }
}

async function main(): Promise<void> {
  const sizeMiB = Number(arg('size-mib', '1024'));
  const jottaMiB = Number(arg('jotta-mib', '256'));
  const files = Number(arg('files', '10000'));
  const work = arg('dir', '') || await fsp.mkdtemp(path.join(os.tmpdir(), 'jbackup-bench-serve-'));
  const env: NodeJS.ProcessEnv = { ...process.env, JBACKUP_PASSWORD: 'bench', JBACKUP_CONFIG_DIR: path.join(work, 'config'), JBACKUP_STATE_DIR: path.join(work, 'state') };
  const rows: Row[] = [];
  try {
    const data = path.join(work, 'data');
    process.stderr.write(`generating ${files} files and a ${sizeMiB} MiB file in ${data}\n`);
    await makeData(data, files, sizeMiB);
    const repo = path.join(work, 'repo');
    await must(['-r', repo, 'init'], env);
    process.stderr.write('snapshot (local)…\n');
    await must(['-r', repo, 'snapshot', data], env);
    rows.push(await measure('local', repo, env, data, files, sizeMiB, work));
    if (!flag('no-jotta')) {
      const { startEmulator } = await import('../tools/jotta-emulator/index.js');
      const emu = await startEmulator({ stateDir: path.join(work, 'emulator'), port: 0, tls: true, seed: 7 });
      try {
        const jenv = { ...env, NODE_EXTRA_CA_CERTS: emu.caCert! };
        const tf = path.join(work, 'login-token');
        await fsp.writeFile(tf, `${emu.loginToken}\n`);
        await must(['jotta', 'login', '--token-file', tf, '--api-url', emu.url, '--jfs-url', emu.url], jenv);
        const jdata = path.join(work, 'jdata');
        await fsp.rm(jdata, { recursive: true, force: true });
        process.stderr.write(`generating ${files} files and a ${jottaMiB} MiB file in ${jdata}\n`);
        await makeData(jdata, files, jottaMiB);
        await must(['-r', 'jotta:bench/serve', 'init'], jenv);
        process.stderr.write('snapshot (jotta emulator)…\n');
        await must(['-r', 'jotta:bench/serve', 'snapshot', jdata], jenv);
        rows.push(await measure('jotta (emulator)', 'jotta:bench/serve', jenv, jdata, files, jottaMiB, work));
      } finally {
        await emu.close();
      }
    }
  } finally {
    if (!flag('keep') && !arg('dir', '')) await fsp.rm(work, { recursive: true, force: true });
  }
  const f = (n: number, d = 0) => n.toFixed(d);
  process.stdout.write('| repository | listing 10,000 entries: tree not cached / cached (first request after start) | first byte of a range | whole file via serve | restore of the file | serve / restore |\n|---|---|---|---|---|---|\n');
  for (const r of rows) process.stdout.write(`| ${r.where} (${r.sizeMiB} MiB file) | ${f(r.listColdMs)} / ${f(r.listWarmMs)} ms (${f(r.listFirstMs)} ms) | ${f(r.firstByteMs)} ms | ${f(r.streamMBs)} MB/s | ${f(r.restoreMBs)} MB/s | ${f(r.ratio * 100)} % |\n`);
  const out = path.join(ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'serve.json'), `${JSON.stringify({ date: new Date().toISOString(), cpus: os.cpus().length, rows }, null, 2)}\n`);
}

main().catch((e: Error) => { process.stderr.write(`${e.stack ?? e.message}\n`); process.exit(1); });
