/**
 * Figures for the web page of `jbackup serve` (README "In a browser"):
 *   node dist/bench/web.js [--mib 256] [--files 10000] [--repeat 5]
 * A local repository with a folder of N small files and one incompressible file of M MiB; `jbackup
 * serve --json` over it; then, over loopback HTTP with the login cookie: the folder page of the N-file
 * folder (time to the last byte, median of --repeat), the big file by /_/download, the folder holding it
 * as /_/tar and /_/zip (MiB/s, best of --repeat), against `jbackup restore` of the same folder (MiB/s of
 * its wall time, best of --repeat). Results: bench/results/web-latest.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'jbackup');
const MiB = 1 << 20;

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

const median = (l: number[]) => [...l].sort((a, b) => a - b)[Math.floor(l.length / 2)]!;

async function timed(url: string, cookie: string, accept = '*/*'): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  const r = await fetch(url, { headers: { cookie, accept } });
  if (r.status !== 200) throw new Error(`${url}: ${r.status}`);
  let bytes = 0;
  for await (const c of r.body!) bytes += (c as Uint8Array).length;
  return { ms: performance.now() - t0, bytes };
}

async function main(): Promise<void> {
  const mib = arg('mib', 256);
  const files = arg('files', 10_000);
  const repeat = arg('repeat', 5);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'jbackup-bench-web-'));
  const env = { ...process.env, JBACKUP_REPOSITORY: path.join(dir, 'repo'), JBACKUP_PASSWORD: 'bench', JBACKUP_KDF_PARAMS: '1024,8,1' };
  let child: ReturnType<typeof spawn> | undefined;
  try {
    const src = path.join(dir, 'src');
    await fsp.mkdir(path.join(src, 'many'), { recursive: true });
    await fsp.mkdir(path.join(src, 'big'), { recursive: true });
    for (let i = 0; i < files; i++) await fsp.writeFile(path.join(src, 'many', `file-${String(i).padStart(5, '0')}.txt`), `file ${i}\n`);
    const c = createCipheriv('aes-256-ctr', createHash('sha256').update('web-bench').digest(), Buffer.alloc(16));
    const fh = await fsp.open(path.join(src, 'big', 'video.mp4'), 'w');
    for (let i = 0; i < mib; i++) await fh.write(c.update(Buffer.alloc(MiB)));
    await fh.close();
    const jb = (args: string[]) => {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [BIN, ...args], { env, cwd: src, encoding: 'utf8', maxBuffer: 64 * MiB });
      if (r.status !== 0) throw new Error(`jbackup ${args.join(' ')}: ${r.stderr}`);
      return performance.now() - t0;
    };
    jb(['init']);
    jb(['snapshot', '.']);
    const restoreMs: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const t = path.join(dir, `restore-${i}`);
      restoreMs.push(jb(['restore', 'latest:/big', '--target', t]));
      await fsp.rm(t, { recursive: true, force: true });
    }
    child = spawn(process.execPath, [BIN, '--json', 'serve'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve) => readline.createInterface({ input: child!.stdout! }).once('line', resolve));
    const { url, browserUrl } = JSON.parse(line) as { url: string; browserUrl: string };
    const login = await fetch(browserUrl, { redirect: 'manual' });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    const page: number[] = [];
    let pageBytes = 0;
    for (let i = 0; i < repeat; i++) { const r = await timed(`${url}snapshots/latest/many/`, cookie, 'text/html'); page.push(r.ms); pageBytes = r.bytes; }
    const rate = async (p: string) => {
      const best: number[] = [];
      for (let i = 0; i < repeat; i++) { const r = await timed(url + p, cookie); best.push(r.bytes / MiB / (r.ms / 1000)); }
      return Math.max(...best);
    };
    const result = {
      date: new Date().toISOString(), loadavg: os.loadavg().map((x) => Number(x.toFixed(2))), cpus: os.cpus().length, node: process.version,
      files, mib, repeat,
      folderPageMs: Number(median(page).toFixed(1)), folderPageFirstMs: Number(page[0]!.toFixed(1)), folderPageKiB: Math.round(pageBytes / 1024),
      downloadMiBs: Number((await rate('_/download/snapshots/latest/big/video.mp4')).toFixed(1)),
      tarMiBs: Number((await rate('_/tar/snapshots/latest/big/')).toFixed(1)),
      zipMiBs: Number((await rate('_/zip/snapshots/latest/big/')).toFixed(1)),
      restoreMiBs: Number((mib / (Math.min(...restoreMs) / 1000)).toFixed(1)),
    };
    console.log(JSON.stringify(result, null, 2));
    await fsp.mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
    await fsp.writeFile(path.join(ROOT, 'bench', 'results', 'web-latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    child?.kill('SIGINT');
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: Error) => { console.error(e.message); process.exit(1); });
