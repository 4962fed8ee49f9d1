/**
 * The README's screenshot of `jbackup serve`'s web page: builds a small demo tree, backs it up twice
 * into a fresh repository, runs `jbackup serve --json`, opens a folder page in Debian's headless
 * chromium (playwright-core) and saves a PNG.
 *
 *   npm run build && node dist/tools/screenshot/serve-browser.js [docs/serve-browser.png] [--dark] [--path=/url/path]
 */
import { spawn, spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'jbackup');
const CHROMIUM = process.env.JBACKUP_CHROMIUM ?? '/usr/bin/chromium';

const bytes = (seed: string, n: number) => createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16)).update(Buffer.alloc(n));

/** a home folder's worth of names, sizes and dates */
const DEMO: [string, number | string, string][] = [
  ['Pictures/2024 Iceland/IMG_4012.HEIC', 2_841_233, '2024-07-14T09:12:44Z'],
  ['Pictures/2024 Iceland/IMG_4013.HEIC', 3_102_907, '2024-07-14T09:13:02Z'],
  ['Pictures/2024 Iceland/IMG_4029.jpg', 4_418_120, '2024-07-15T18:40:31Z'],
  ['Pictures/2024 Iceland/IMG_4031.jpg', 3_977_554, '2024-07-15T18:42:10Z'],
  ['Pictures/2024 Iceland/Skógafoss panorama.jpg', 9_204_311, '2024-07-16T12:05:57Z'],
  ['Pictures/2024 Iceland/Jökulsárlón.mov', 48_113_290, '2024-07-17T16:21:09Z'],
  ['Pictures/2024 Iceland/route.gpx', '<?xml version="1.0"?><gpx version="1.1"></gpx>\n', '2024-07-18T08:00:00Z'],
  ['Pictures/2024 Iceland/notes.txt', 'Day 1: Reykjavík → Vík\nDay 2: Skógafoss, Reynisfjara\nDay 3: Jökulsárlón\n', '2024-07-18T21:14:03Z'],
  ['Pictures/2024 Iceland/Day 2/IMG_4101.jpg', 3_512_002, '2024-07-15T10:01:00Z'],
  ['Pictures/2024 Iceland/Day 3/IMG_4188.jpg', 3_200_118, '2024-07-16T10:01:00Z'],
  ['Pictures/2024 Iceland/Edits/Skógafoss (edit).tif', 21_040_220, '2024-08-02T20:33:12Z'],
  ['Pictures/2023 Lofoten/IMG_2210.jpg', 3_331_004, '2023-03-02T11:00:00Z'],
  ['Documents/Taxes/2023 return.pdf', 412_771, '2024-04-11T19:22:08Z'],
  ['Documents/letter.md', '# Dear Anna\n\nThe photos are in the backup.\n', '2024-09-01T10:00:00Z'],
];

async function build(src: string): Promise<void> {
  for (const [rel, content, mtime] of DEMO) {
    const p = path.join(src, rel);
    await fsp.mkdir(path.dirname(p), { recursive: true });
    // sizes above 1 MiB are sparse (the listing shows the size; the content does not matter here)
    if (typeof content === 'number') {
      if (content > 1 << 20) { const fh = await fsp.open(p, 'w'); await fh.truncate(content); await fh.write(bytes(rel, 4096), 0, 4096, 0); await fh.close(); }
      else await fsp.writeFile(p, bytes(rel, content));
    } else await fsp.writeFile(p, content);
    const t = new Date(mtime);
    await fsp.utimes(p, t, t);
  }
  for (const d of ['Pictures/2024 Iceland/Day 2', 'Pictures/2024 Iceland/Day 3', 'Pictures/2024 Iceland/Edits', 'Pictures/2024 Iceland']) {
    const t = new Date('2024-08-02T20:33:12Z');
    await fsp.utimes(path.join(src, d), t, t);
  }
}

function jb(args: string[], env: NodeJS.ProcessEnv, cwd: string): void {
  const r = spawnSync(process.execPath, [BIN, ...args], { env, cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`jbackup ${args.join(' ')}: ${r.stderr}`);
}

async function main(): Promise<void> {
  const out = path.resolve(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? path.join(ROOT, 'docs', 'serve-browser.png'));
  const dark = process.argv.includes('--dark');
  const shown = process.argv.find((a) => a.startsWith('--path='))?.slice(7) ?? 'snapshots/latest/Pictures/2024%20Iceland/';
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'jbackup-screenshot-'));
  const { chromium } = await import('playwright-core');
  let child: ReturnType<typeof spawn> | undefined;
  try {
    const src = path.join(dir, 'Users', 'anna');
    await build(src);
    const env = { ...process.env, JBACKUP_REPOSITORY: path.join(dir, 'repo'), JBACKUP_PASSWORD: 'demo', JBACKUP_KDF_PARAMS: '1024,8,1' };
    jb(['init'], env, src);
    jb(['snapshot', '--host', 'macbook', '--tag', 'daily', '.'], env, src);
    await fsp.writeFile(path.join(src, 'Documents', 'letter.md'), '# Dear Anna\n\nThe photos are in the backup, all of them.\n');
    jb(['snapshot', '--host', 'macbook', '--tag', 'daily', '.'], env, src);
    child = spawn(process.execPath, [BIN, '--json', 'serve'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve) => readline.createInterface({ input: child!.stdout! }).once('line', resolve));
    const { browserUrl, url } = JSON.parse(line) as { browserUrl: string; url: string };
    const profile = path.join(dir, 'profile');
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, viewport: { width: 1100, height: 640 }, deviceScaleFactor: 1, colorScheme: dark ? 'dark' : 'light',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars', '--font-render-hinting=none'],
    });
    const page = await ctx.newPage();
    await page.goto(browserUrl);
    await page.goto(url + shown.replace(/^\//, ''));
    await page.screenshot({ path: out, type: 'png' });
    await ctx.close();
    console.log(`${out}: ${(await fsp.stat(out)).size} bytes`);
  } finally {
    child?.kill('SIGINT');
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: Error) => { console.error(e.message); process.exit(1); });
