/**
 * `npm run bench`: jbackup side by side with restic (when installed) on the same generated data,
 * in the same run. Wall time and peak RSS of each command come from /usr/bin/time (GNU time),
 * or from the wall clock alone when it is missing.
 *
 * Cases, each run by jbackup and then by restic on the same state of the data:
 *   backup     first snapshot of the dataset ("photos": random, incompressible; "text": compressible
 *              prose; "small": 10k small files in 100 directories)
 *   rerun      the same snapshot again, nothing changed (reads no file contents)
 *   restore    the latest snapshot into an empty directory
 *   backup2    after deleting a third of the photos, adding as many new ones and editing text
 *   prune      forget the first snapshot, then prune (repacks and deletes what only it used)
 *   check      check --read-data of the pruned repository
 *   jotta      snapshot of the photos to Jottacloud (the loopback emulator, TLS): jbackup natively,
 *              restic through `rclone serve restic` (rclone's jottacloud backend)
 *   jotta-restore  restore of that snapshot from the emulator
 *   rest, rest-rerun, rest-restore  backup, re-run and restore of the whole dataset to a REST server:
 *              `rclone serve restic` on loopback (its storage in /dev/shm when there is room), the
 *              same server for both tools (`-r rest:http://127.0.0.1:<port>/<tool>/`)
 *
 * --dataset real: the same backup, rerun and restore cases on real files backed up in place (read
 * only; bench/datasets.ts lists the directories), restored into a temp dir.
 * --dataset scale: --scale-files N (default 250,000) small files in a deep tree, generated from
 * fixed seeds; backup, rerun, restore and touch1 (a re-run after appending a byte to every 100th file).
 * The real and scale datasets skip backup2, prune, check and the Jottacloud cases.
 *
 * Usage: npm run bench -- [--dataset generated|real|scale] [--scale-files N] [--photos-mib N] [--small-files N] [--only case,case] [--no-jotta] [--no-rest]
 *                         [--repeat N] [--dir DIR] [--emulator-dir DIR] [--keep]
 * --repeat N (default 3): backup, rerun, restore, jotta, jotta-restore and the rest cases run N times per tool, in
 * alternating order (jbackup first, then restic first, …); each tool's row is its median run by time
 * (its RSS: the median of its runs' RSS), with the range of the runs in the JSON. On a shared VM a
 * single run moves ±20 %; the other cases change the repository and run once.
 * Results: a table on stdout and bench/results/latest.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, mkdirSync, promises as fsp, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomFillSync } from 'node:crypto';
import { Agent, request } from 'undici';
import { prng, prose, realDataset, scaleDataset, touchOnePercent, type ScaleSet } from './datasets.js';
import { startConnectProxy, tunnelHostsTo, type ConnectProxy } from '../tools/jotta-emulator/connect-proxy.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const JBACKUP = path.join(ROOT, 'bin', 'jbackup');
const EMULATOR = path.join(ROOT, 'dist', 'tools', 'jotta-emulator', 'main.js');
const MiB = 1024 * 1024;
const PASSWORD = 'bench-password';

// ---------------------------------------------------------------- options

type DatasetKind = 'generated' | 'real' | 'scale';

interface Opts { dataset: DatasetKind; scaleFiles: number; photosMiB: number; smallFiles: number; only: Set<string> | null; jotta: boolean; rest: boolean; dir: string | null; keep: boolean; repeat: number; emulatorDir: string | null }

function parseArgs(argv: string[]): Opts {
  const o: Opts = { dataset: 'generated', scaleFiles: 250_000, photosMiB: 480, smallFiles: 10_000, only: null, jotta: true, rest: true, dir: null, keep: false, repeat: 3, emulatorDir: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--photos-mib') o.photosMiB = Number(val());
    else if (a === '--dataset') {
      const d = val();
      if (d !== 'generated' && d !== 'real' && d !== 'scale') throw new Error(`--dataset must be generated, real or scale, not ${JSON.stringify(d)}`);
      o.dataset = d;
    } else if (a === '--scale-files') o.scaleFiles = Number(val());
    else if (a === '--small-files') o.smallFiles = Number(val());
    else if (a === '--only') o.only = new Set(val().split(','));
    else if (a === '--no-jotta') o.jotta = false;
    else if (a === '--no-rest') o.rest = false;
    else if (a === '--dir') o.dir = val();
    else if (a === '--keep') o.keep = true;
    else if (a === '--emulator-dir') o.emulatorDir = val();
    else if (a === '--repeat') {
      o.repeat = Number(val());
      if (!Number.isInteger(o.repeat) || o.repeat < 1) throw new Error('--repeat needs a whole number ≥ 1');
    }
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: npm run bench -- [--dataset generated|real|scale] [--scale-files N] [--photos-mib N] [--small-files N] [--only backup,rerun,restore,touch1,backup2,prune,check,jotta,jotta-restore,rest,rest-rerun,rest-restore] [--no-jotta] [--no-rest] [--repeat N] [--dir DIR] [--emulator-dir DIR] [--keep]\n');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  if (!(o.photosMiB >= 4) || !(o.smallFiles >= 0)) throw new Error('--photos-mib must be ≥ 4, --small-files ≥ 0');
  if (!Number.isInteger(o.scaleFiles) || o.scaleFiles < 100) throw new Error('--scale-files needs a whole number ≥ 100');
  return o;
}

// ---------------------------------------------------------------- tools

function which(cmd: string): string | null {
  for (const d of (process.env['PATH'] ?? '').split(':')) {
    const p = path.join(d, cmd);
    if (d && existsSync(p)) return p;
  }
  return null;
}

const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

/** cpuSeconds: user + system time of the command (its children included) */
interface Measured { seconds: number; rssMiB: number | null; cpuSeconds?: number }

interface RunSpec { cmd: string; args: string[]; env?: NodeJS.ProcessEnv; cwd?: string }

/** Run a command to completion; throws with its stderr when it fails. */
async function run(spec: RunSpec, timed = false): Promise<Measured & { stdout: string }> {
  const timeFile = path.join(os.tmpdir(), `jbackup-bench-time-${process.pid}`);
  const [cmd, args] = timed && GNU_TIME
    ? [GNU_TIME, ['-f', '%e %M %U %S', '-o', timeFile, spec.cmd, ...spec.args]]
    : [spec.cmd, spec.args];
  const t0 = process.hrtime.bigint();
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { env: spec.env ?? process.env, cwd: spec.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.code !== 0) throw new Error(`${path.basename(spec.cmd)} ${spec.args.join(' ')} exited ${r.code}\n${r.stderr.slice(-2000)}`);
  if (timed && GNU_TIME) {
    const [e, m, u, sy] = (await fsp.readFile(timeFile, 'utf8')).trim().split('\n').pop()!.split(' ');
    await fsp.rm(timeFile, { force: true });
    return { seconds: Number(e), rssMiB: Number(m) / 1024, cpuSeconds: Number(u) + Number(sy), stdout: r.stdout };
  }
  return { seconds: wall, rssMiB: null, stdout: r.stdout };
}

// ---------------------------------------------------------------- dataset

async function writeRandomFile(p: string, bytes: number): Promise<void> {
  const fh = await fsp.open(p, 'w');
  try {
    const buf = Buffer.allocUnsafe(Math.min(bytes, 4 * MiB));
    for (let off = 0; off < bytes; off += buf.length) {
      const n = Math.min(buf.length, bytes - off);
      randomFillSync(buf, 0, n);
      await fh.write(buf, 0, n);
    }
  } finally {
    await fh.close();
  }
}

interface Dataset { root: string; photos: string[]; bytes: number; files: number }

async function makeDataset(root: string, o: Opts): Promise<Dataset> {
  const rand = prng(20261130);
  const photos: string[] = [];
  let bytes = 0;
  let files = 0;
  await fsp.mkdir(path.join(root, 'photos'), { recursive: true });
  let left = o.photosMiB * MiB;
  for (let i = 0; left > 0; i++) {
    const size = Math.min(left, Math.round((2 + rand() * 6) * MiB)); // 2–8 MiB, like camera JPEGs
    const p = path.join(root, 'photos', `IMG_${String(1000 + i)}.jpg`);
    await writeRandomFile(p, size);
    photos.push(p);
    left -= size;
    bytes += size;
    files++;
  }
  await fsp.mkdir(path.join(root, 'text'), { recursive: true });
  for (let i = 0; i < 40; i++) {
    const size = Math.round(100_000 + rand() * 1_900_000);
    await fsp.writeFile(path.join(root, 'text', `chapter-${i}.txt`), prose(rand, size));
    bytes += size;
    files++;
  }
  for (let i = 0; i < o.smallFiles; i++) {
    const dir = path.join(root, 'small', `d${String(Math.floor(i / 100)).padStart(3, '0')}`);
    if (i % 100 === 0) await fsp.mkdir(dir, { recursive: true });
    const size = Math.round(200 + rand() * 3800);
    await fsp.writeFile(path.join(dir, `note-${i}.md`), prose(rand, size));
    bytes += size;
    files++;
  }
  return { root, photos, bytes, files };
}

/** delete a third of the photos, add as many new ones, append to every text file */
async function mutateDataset(ds: Dataset): Promise<void> {
  const gone = ds.photos.filter((_, i) => i % 3 === 0);
  for (const p of gone) await fsp.rm(p);
  const rand = prng(7);
  let i = 0;
  for (const p of gone) {
    const size = Math.round((2 + rand() * 6) * MiB);
    await writeRandomFile(path.join(path.dirname(p), `NEW_${String(i++).padStart(4, '0')}.jpg`), size);
  }
  for (const f of await fsp.readdir(path.join(ds.root, 'text'))) await fsp.appendFile(path.join(ds.root, 'text', f), prose(rand, 5000));
}

// ---------------------------------------------------------------- the tools under test

interface Tool {
  name: 'jbackup' | 'restic';
  /** command for a repository operation */
  cmd(args: string[], repo: string, extraEnv?: NodeJS.ProcessEnv): RunSpec;
}

function jbackupTool(configDir: string, extraEnv: NodeJS.ProcessEnv): Tool {
  return {
    name: 'jbackup',
    cmd: (args, repo, env) => ({
      // the launcher, as users run it (it starts node with jbackup's V8 flags)
      cmd: JBACKUP,
      args: ['-r', repo, ...args],
      env: { ...process.env, ...extraEnv, ...env, JBACKUP_PASSWORD: PASSWORD, JBACKUP_CONFIG_DIR: configDir },
    }),
  };
}

function resticTool(bin: string, cacheDir: string, extraEnv: NodeJS.ProcessEnv): Tool {
  return {
    name: 'restic',
    cmd: (args, repo, env) => ({
      cmd: bin,
      args: ['-r', repo, ...args],
      env: { ...process.env, ...extraEnv, ...env, RESTIC_PASSWORD: PASSWORD, RESTIC_CACHE_DIR: cacheDir },
    }),
  };
}

// ---------------------------------------------------------------- the emulator

interface Emu { url: string; loginToken: string; caCert: string; stop(): Promise<void>; mint(): Promise<string>; cpuSeconds(): number | null }

/** user + system CPU seconds of a process so far (Linux /proc; null elsewhere) */
function procCpuSeconds(pid: number | undefined): number | null {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

async function startEmulatorProcess(stateDir: string): Promise<Emu> {
  const child = spawn(process.execPath, [EMULATOR, '--state', stateDir, '--tls', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const first = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => resolve(l));
    child.once('exit', (c) => reject(new Error(`emulator exited ${c}`)));
  });
  const info = JSON.parse(first) as { url: string; loginToken: string; caCert: string };
  const ca = await fsp.readFile(info.caCert, 'utf8');
  return {
    ...info,
    cpuSeconds: () => procCpuSeconds(child.pid),
    async mint() {
      const agent = new Agent({ connect: { ca } });
      try {
        const r = await request(`${info.url}/_emulator/login-token`, { method: 'POST', dispatcher: agent });
        return ((await r.body.json()) as { loginToken: string }).loginToken;
      } finally {
        await agent.close();
      }
    },
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

// ---------------------------------------------------------------- main

interface Row {
  case: string; tool: string; seconds: number; rssMiB: number | null; cpuSeconds?: number; mbps: number | null; note?: string;
  /** every run of a repeated case (the row shows the median) */
  runs?: Measured[];
}

/** the median run by time (with its note), its RSS replaced by the median of the runs' RSS */
function medianRun<T extends { m: Measured }>(runs: T[]): T {
  const mid = <X>(xs: X[]): X => xs[Math.floor((xs.length - 1) / 2)]!;
  const r = mid([...runs].sort((a, b) => a.m.seconds - b.m.seconds));
  const rss = runs.map((x) => x.m.rssMiB).filter((x): x is number => x !== null).sort((a, b) => a - b);
  return { ...r, m: { ...r.m, rssMiB: rss.length ? mid(rss) : null } };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (!existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js'))) throw new Error('build first: npm ci (or npx tsc -p tsconfig.json)');
  const resticBin = which('restic');
  const rcloneBin = which('rclone');
  const want = (c: string): boolean => o.only === null || o.only.has(c);
  const base = o.dir ? path.resolve(o.dir) : await fsp.mkdtemp(path.join(os.tmpdir(), 'jbackup-bench-'));
  mkdirSync(base, { recursive: true });
  const log = (s: string): void => { process.stderr.write(`${s}\n`); };
  if (!resticBin) log('restic not found on PATH: jbackup only (apt-get install -y restic for the comparison)');
  if (!GNU_TIME) log('/usr/bin/time not found: wall clock only, no peak RSS (apt-get install -y time)');

  // what is backed up: `paths` under `root` (the working directory of the backup commands)
  let ds: { root: string; paths: string[]; bytes: number; files: number; describe: string };
  let generated: Dataset | null = null;
  let scale: ScaleSet | null = null;
  if (o.dataset === 'real') {
    ds = realDataset(ROOT);
    log(`dataset: ${ds.describe}: ${ds.files} files, ${(ds.bytes / MiB).toFixed(0)} MiB (backed up in place, read only)`);
  } else if (o.dataset === 'scale') {
    const t0 = Date.now();
    ds = scale = scaleDataset(path.join(base, 'data'), o.scaleFiles);
    log(`dataset in ${base}/data: ${ds.files} files, ${(ds.bytes / MiB).toFixed(0)} MiB, generated in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } else {
    log(`dataset in ${base}/data: ${o.photosMiB} MiB photos, 40 text files, ${o.smallFiles} small files`);
    generated = await makeDataset(path.join(base, 'data'), o);
    ds = { ...generated, paths: ['.'], describe: `${o.photosMiB} MiB photos, 40 text files, ${o.smallFiles} small files` };
  }
  spawnSync('sync');
  const rows: Row[] = [];
  const line = (c: string, tool: string, m: Measured, mbps: number | null, note?: string): string =>
    `  ${c.padEnd(14)} ${tool.padEnd(8)} ${m.seconds.toFixed(2).padStart(7)} s  ${mbps !== null ? `${mbps.toFixed(0).padStart(5)} MiB/s` : '          '}  ${m.rssMiB !== null ? `${m.rssMiB.toFixed(0)} MiB RSS` : ''}${m.cpuSeconds !== undefined ? `  ${m.cpuSeconds.toFixed(2)} s CPU` : ''}${note ? `  (${note})` : ''}`;
  const record = (c: string, tool: string, m: Measured, bytes: number | null, note?: string, runs?: Measured[]): void => {
    const row: Row = { case: c, tool, seconds: m.seconds, rssMiB: m.rssMiB, ...(m.cpuSeconds !== undefined ? { cpuSeconds: m.cpuSeconds } : {}), mbps: bytes !== null && m.seconds > 0 ? bytes / MiB / m.seconds : null, ...(note ? { note } : {}), ...(runs ? { runs } : {}) };
    rows.push(row);
    log(`${line(c, tool, m, row.mbps, note)}${runs && runs.length > 1 ? `  [median of ${runs.length}: ${runs.map((r) => r.seconds.toFixed(2)).join(' ')} s]` : ''}`);
  };
  /**
   * Run a case o.repeat times per tool, alternating which tool goes first, and record each tool's
   * median. `once(t, i)` runs it once and gives the measurement and the row's note.
   */
  const repeated = async <T extends { name: string }>(c: string, ts: T[], bytes: number | null, once: (t: T, i: number) => Promise<{ m: Measured; note?: string }>): Promise<void> => {
    const got = new Map<string, Array<{ m: Measured; note?: string }>>();
    for (let i = 0; i < o.repeat; i++) {
      for (const t of i % 2 === 0 ? ts : [...ts].reverse()) {
        const r = await once(t, i);
        if (o.repeat > 1) log(`${line(c, t.name, r.m, bytes !== null ? bytes / MiB / r.m.seconds : null, r.note)}  (run ${i + 1}/${o.repeat})`);
        got.set(t.name, [...(got.get(t.name) ?? []), r]);
      }
    }
    for (const t of ts) {
      const all = got.get(t.name)!;
      const med = medianRun(all);
      record(c, t.name, med.m, bytes, med.note, o.repeat > 1 ? all.map((x) => x.m) : undefined);
    }
  };

  const tools: Tool[] = [jbackupTool(path.join(base, 'jbackup-config'), {})];
  if (resticBin) tools.push(resticTool(resticBin, path.join(base, 'restic-cache'), {}));
  const repoOf = (t: Tool): string => path.join(base, `repo-${t.name}`);
  const initRepo = async (t: Tool): Promise<void> => {
    await fsp.rm(repoOf(t), { recursive: true, force: true });
    await run(t.cmd(['init'], repoOf(t)));
  };
  const snapshot = (t: Tool, tag: string): RunSpec => ({ ...t.cmd(['backup', '-q', '--tag', tag, ...ds.paths], repoOf(t)), cwd: ds.root });
  const snapIds = async (t: Tool, repo: string, env?: NodeJS.ProcessEnv): Promise<string[]> => {
    const out = (await run(t.cmd(['snapshots', '--json'], repo, env))).stdout;
    return (JSON.parse(out) as Array<{ id: string; time: string }>).sort((a, b) => a.time.localeCompare(b.time)).map((s) => s.id);
  };

  // backup (each run into a new repository; the last one is kept), rerun, restore
  await repeated('backup', tools, ds.bytes, async (t) => {
    await initRepo(t);
    spawnSync('sync');
    return { m: await run(snapshot(t, 'first'), true) };
  });
  if (want('rerun')) await repeated('rerun', tools, ds.bytes, async (t) => ({ m: await run(snapshot(t, 'first'), true) }));
  if (want('restore')) {
    // every run into its own directory, all deleted after the case: ext4 skips inodes freed in the
    // last minute or more when it allocates (recently_deleted()), so creating 10k files right after
    // deleting 10k took ~2.5× the system time here, a penalty for whichever tool ran next
    const targets: string[] = [];
    await repeated('restore', tools, ds.bytes, async (t, i) => {
      const target = path.join(base, `restore-${t.name}-${i}`);
      await removeSettled(target);
      targets.push(target);
      return { m: await run(t.cmd(['restore', 'latest', '--target', target], repoOf(t)), true) };
    });
    for (const t of targets) await removeSettled(t);
  }

  // scale: a re-run after modifying 1 % of the files (once per round, so both tools see the same change)
  if (scale && want('touch1')) {
    const s = scale;
    let touched = -1;
    await repeated('touch1', tools, null, async (t, i) => {
      if (touched !== i) { touchOnePercent(s); spawnSync('sync'); touched = i; }
      return { m: await run(snapshot(t, 'first'), true), note: `${s.touchable.length} files modified` };
    });
  }

  // history for prune and check (the generated dataset only)
  if (generated && (want('backup2') || want('prune') || want('check'))) {
    await mutateDataset(generated);
    spawnSync('sync');
    for (const t of tools) record('backup2', t.name, await run(snapshot(t, 'second'), true), null, 'a third of the photos replaced');
    for (const t of tools) {
      const ids = await snapIds(t, repoOf(t));
      // forget the first two snapshots (the initial one and its unchanged re-run)
      await run(t.cmd(['forget', ...ids.slice(0, -1)], repoOf(t)));
    }
    if (want('prune')) {
      for (const t of tools) {
        const before = await du(repoOf(t));
        const m = await run(t.cmd(['prune'], repoOf(t)), true);
        const after = await du(repoOf(t));
        record('prune', t.name, m, null, `repository ${(before / MiB).toFixed(0)} → ${(after / MiB).toFixed(0)} MiB`);
      }
    }
    if (want('check')) {
      for (const t of tools) {
        const size = await du(repoOf(t));
        record('check', t.name, await run(t.cmd(['check', '--read-data'], repoOf(t)), true), size, 'check --read-data');
      }
    }
  }

  // Jottacloud: jbackup natively vs restic → rclone, both against the emulator in a child process
  if (generated && o.jotta && (want('jotta') || want('jotta-restore'))) {
    // The emulator stands in for Jottacloud's servers: its storage goes to RAM (/dev/shm) when there
    // is room, so that its disk writes do not compete with the tool being measured (on this VM its
    // writes to /tmp cost ~2 s of CPU per 480 MiB, more than half the emulator's total)
    const emuDir = await emulatorStateDir(base, o.emulatorDir);
    const emu = await startEmulatorProcess(emuDir);
    let proxy: ConnectProxy | null = null;
    try {
      const photosDir = path.join(ds.root, 'photos');
      const photoBytes = await du(photosDir);
      const jtools: Array<{ tool: Tool; repo: string }> = [];
      // jbackup: log in with the login token, repository jotta:bench/jbackup
      const cfg = path.join(base, 'jbackup-config');
      const jb = jbackupTool(cfg, { NODE_EXTRA_CA_CERTS: emu.caCert });
      const tokenFile = path.join(base, 'login-token');
      await fsp.writeFile(tokenFile, emu.loginToken, { mode: 0o600 });
      await run({ cmd: process.execPath, args: [JBACKUP, 'jotta', 'login', '--token-file', tokenFile, '--api-url', emu.url, '--jfs-url', emu.url], env: { ...process.env, JBACKUP_CONFIG_DIR: cfg, NODE_EXTRA_CA_CERTS: emu.caCert } });
      jtools.push({ tool: jb, repo: 'jotta:bench/jbackup' });
      if (resticBin && rcloneBin) {
        proxy = await startConnectProxy(tunnelHostsTo(['jfs.jottacloud.com', 'api.jottacloud.com', 'id.jottacloud.com', 'up.jottacloud.com'], Number(new URL(emu.url).port)));
        const rcloneEnv: NodeJS.ProcessEnv = {
          HTTPS_PROXY: proxy.url, https_proxy: proxy.url, SSL_CERT_FILE: emu.caCert,
          RCLONE_CONFIG: path.join(base, 'rclone.conf'), RCLONE_CACHE_DIR: path.join(base, 'rclone-cache'),
        };
        await fsp.rm(path.join(base, 'rclone.conf'), { force: true });
        await run({ cmd: rcloneBin, args: ['config', 'create', 'jotta', 'jottacloud', 'config_type=standard', `config_login_token=${await emu.mint()}`, 'config_non_standard=false', '--non-interactive'], env: { ...process.env, ...rcloneEnv } });
        jtools.push({ tool: resticTool(resticBin, path.join(base, 'restic-cache-jotta'), rcloneEnv), repo: 'rclone:jotta:bench/restic' });
      } else log('restic or rclone missing: no restic → rclone → emulator comparison');
      const named = jtools.map((j) => ({ ...j, name: j.tool.name }));
      // each run into a new repository (a fresh path: deleted files would stay in the emulator's trash)
      const jrepo = (repo: string, i: number): string => `${repo}-${i}`;
      await repeated('jotta', named, photoBytes, async ({ tool, repo }, i) => {
        await run(tool.cmd(['init'], jrepo(repo, i)));
        const c0 = emu.cpuSeconds();
        const m = await run({ ...tool.cmd(['backup', '-q', '.'], jrepo(repo, i)), cwd: photosDir }, true);
        const c1 = emu.cpuSeconds();
        const emuCpu = c0 !== null && c1 !== null ? `; emulator CPU ${(c1 - c0).toFixed(2)} s` : '';
        return { m, note: `${tool.name === 'restic' ? 'via rclone serve restic' : 'native'}${emuCpu}` };
      });
      if (want('jotta-restore')) {
        const targets: string[] = []; // (kept until the end of the case, as for restore)
        await repeated('jotta-restore', named, photoBytes, async ({ tool, repo }, i) => {
          const target = path.join(base, `jotta-restore-${tool.name}-${i}`);
          await removeSettled(target);
          targets.push(target);
          const c0 = emu.cpuSeconds();
          const m = await run(tool.cmd(['restore', 'latest', '--target', target], jrepo(repo, o.repeat - 1)), true);
          const c1 = emu.cpuSeconds();
          return { m, note: c0 !== null && c1 !== null ? `emulator CPU ${(c1 - c0).toFixed(2)} s` : undefined };
        });
        for (const t of targets) await removeSettled(t);
      }
    } finally {
      await proxy?.close();
      await emu.stop();
      if (!emuDir.startsWith(`${base}${path.sep}`)) await fsp.rm(emuDir, { recursive: true, force: true });
    }
  }

  // REST: both tools to one `rclone serve restic` on loopback (the generated dataset only)
  if (generated && o.rest && (want('rest') || want('rest-rerun') || want('rest-restore'))) {
    if (!rcloneBin) log('rclone missing: no rest: cases');
    else {
      const store = await emulatorStateDir(base, null, 'rest-store');
      const server = await startRcloneServe(rcloneBin, store);
      try {
        const restRepo = (t: Tool, i: number): string => `rest:${server.url}${t.name}-${i}/`;
        const serverCpu = (c0: number | null): string => {
          const c1 = procCpuSeconds(server.pid);
          return c0 !== null && c1 !== null ? `server CPU ${(c1 - c0).toFixed(2)} s` : '';
        };
        const restSnap = async (t: Tool, i: number): Promise<{ m: Measured; note?: string }> => {
          const c0 = procCpuSeconds(server.pid);
          const m = await run({ ...t.cmd(['backup', '-q', ...ds.paths], restRepo(t, i)), cwd: ds.root }, true);
          return { m, note: serverCpu(c0) };
        };
        // each backup run into a new repository on the server; the re-runs and restores use the last
        await repeated('rest', tools, ds.bytes, async (t, i) => {
          await run(t.cmd(['init'], restRepo(t, i)));
          return restSnap(t, i);
        });
        if (want('rest-rerun')) await repeated('rest-rerun', tools, ds.bytes, async (t) => restSnap(t, o.repeat - 1));
        if (want('rest-restore')) {
          const targets: string[] = [];
          await repeated('rest-restore', tools, ds.bytes, async (t, i) => {
            const target = path.join(base, `rest-restore-${t.name}-${i}`);
            await removeSettled(target);
            targets.push(target);
            const c0 = procCpuSeconds(server.pid);
            const m = await run(t.cmd(['restore', 'latest', '--target', target], restRepo(t, o.repeat - 1)), true);
            return { m, note: serverCpu(c0) };
          });
          for (const t of targets) await removeSettled(t);
        }
      } finally {
        await server.stop();
        if (!store.startsWith(`${base}${path.sep}`)) await fsp.rm(store, { recursive: true, force: true });
      }
    }
  }

  // table
  const cases = [...new Set(rows.map((r) => r.case))];
  const lines: string[] = [];
  const fmt = (r: Row | undefined): string[] => r
    ? [r.seconds.toFixed(2), r.cpuSeconds !== undefined ? r.cpuSeconds.toFixed(2) : '', r.mbps !== null ? r.mbps.toFixed(0) : '', r.rssMiB !== null ? r.rssMiB.toFixed(0) : '']
    : ['', '', '', ''];
  lines.push('| case | jbackup s | CPU s | MiB/s | RSS MiB | restic s | CPU s | MiB/s | RSS MiB | time restic/jbackup | RSS jbackup/restic |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const summary: Array<Record<string, unknown>> = [];
  for (const c of cases) {
    const j = rows.find((r) => r.case === c && r.tool === 'jbackup');
    const r = rows.find((x) => x.case === c && x.tool === 'restic');
    const speed = j && r ? r.seconds / j.seconds : null;
    const mem = j?.rssMiB && r?.rssMiB ? j.rssMiB / r.rssMiB : null;
    lines.push(`| ${c} | ${fmt(j).join(' | ')} | ${fmt(r).join(' | ')} | ${speed !== null ? `${speed.toFixed(2)}×` : ''} | ${mem !== null ? `${mem.toFixed(2)}×` : ''} |`);
    summary.push({ case: c, jbackup: j ?? null, restic: r ?? null, speedup: speed, rssRatio: mem });
  }
  const restic = resticBin ? spawnSync(resticBin, ['version']).stdout.toString().trim() : null;
  const rclone = rcloneBin ? spawnSync(rcloneBin, ['version']).stdout.toString().split('\n')[0]!.trim() : null;
  const header = `dataset: ${(ds.bytes / MiB).toFixed(0)} MiB in ${ds.files} files (${ds.describe}); load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; ` +
    `${os.cpus().length} cores, node ${process.version}${restic ? `, ${restic}` : ''}${rclone ? `, ${rclone}` : ''}`;
  process.stdout.write(`\n${header}\n\n${lines.join('\n')}\n\n(time restic/jbackup > 1: jbackup is faster; RSS is the peak resident set of the command${o.repeat > 1 ? `; backup, rerun, restore, touch1, jotta, jotta-restore and the rest cases: each tool's median of ${o.repeat} runs` : ''})\n`);
  const outDir = path.join(ROOT, 'bench', 'results');
  await fsp.mkdir(outDir, { recursive: true });
  await fsp.writeFile(path.join(outDir, o.dataset === 'generated' ? 'latest.json' : `latest-${o.dataset}.json`), `${JSON.stringify({
    date: new Date().toISOString(), dataset: { kind: o.dataset, describe: ds.describe, bytes: ds.bytes, files: ds.files, ...(generated ? { photosMiB: o.photosMiB, smallFiles: o.smallFiles } : {}), ...(scale ? { scaleFiles: o.scaleFiles } : {}) },
    loadavg: os.loadavg(),
    machine: { cores: os.cpus().length, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, restic, rclone }, rows, summary,
  }, null, 2)}\n`);
  if (!o.keep && !o.dir) await fsp.rm(base, { recursive: true, force: true });
  else log(`kept ${base}`);
}

/** where the emulator (or the REST server) keeps its state: --emulator-dir, else /dev/shm with ≥ 4 GiB free, else under base */
async function emulatorStateDir(base: string, chosen: string | null, name = 'emulator'): Promise<string> {
  const dir = chosen ? path.resolve(chosen) : await (async () => {
    try {
      const st = await fsp.statfs('/dev/shm');
      if (st.bavail * st.bsize >= 4 * 2 ** 30) return await fsp.mkdtemp(`/dev/shm/jbackup-bench-${name}-`);
    } catch {
      // no /dev/shm
    }
    return path.join(base, name);
  })();
  await fsp.rm(dir, { recursive: true, force: true });
  return dir;
}

/** `rclone serve restic` on a port the OS chooses (read from its "Serving restic REST API on …" line) */
async function startRcloneServe(bin: string, dir: string): Promise<{ url: string; pid: number | undefined; stop(): Promise<void> }> {
  const child = spawn(bin, ['serve', 'restic', '--addr', '127.0.0.1:0', '--config', '/dev/null', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stderr });
    rl.on('line', (l) => {
      const m = /Serving restic REST API on \[?(http:\/\/[^\s\]]+?)\/?\]?$/.exec(l);
      if (m) resolve(`${m[1]}/`);
    });
    void exited.then(() => reject(new Error('rclone serve restic exited before serving')));
  });
  return { url, pid: child.pid, stop: async () => { child.kill('SIGTERM'); await exited; } };
}

/** delete a tree and let the kernel finish the deletion before anything is timed */
async function removeSettled(p: string): Promise<void> {
  await fsp.rm(p, { recursive: true, force: true });
  spawnSync('sync');
}

async function du(dir: string): Promise<number> {
  let n = 0;
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += (await fsp.stat(path.join(e.parentPath, e.name))).size;
  }
  return n;
}

main().catch((e: Error) => {
  process.stderr.write(`bench: ${e.message}\n`);
  process.exit(1);
});
