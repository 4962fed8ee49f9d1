/** `jbackup serve --json` as a child process, and Debian's chromium through playwright-core. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as readline from 'node:readline';
import { JBACKUP_BIN, requireInterop, tmpDir } from '../helpers/tools.js';

export const CHROMIUM = process.env.JBACKUP_CHROMIUM ?? '/usr/bin/chromium';
export const HAVE_CHROMIUM = existsSync(CHROMIUM);

/** false (with a note) when chromium is missing; throws under JBACKUP_REQUIRE_INTEROP=1 */
export function chromiumOrSkip(what: string): boolean {
  if (HAVE_CHROMIUM) return true;
  if (requireInterop()) throw new Error(`${what}: chromium (${CHROMIUM}) is required (JBACKUP_REQUIRE_INTEROP=1) but not found`);
  console.warn(`[interop] skipping "${what}": ${CHROMIUM} not found (apt install chromium; JBACKUP_REQUIRE_INTEROP=1 makes this fail)`);
  return false;
}

export interface Served { url: string; username: string; password: string; browserUrl: string; child: ChildProcess; stderr: string[]; stop(): Promise<number | null> }

export async function startServe(env: Record<string, string>, args: string[] = []): Promise<Served> {
  const child = spawn(process.execPath, [JBACKUP_BIN, '--json', 'serve', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const first = await new Promise<string>((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout! });
    rl.once('line', (l) => { resolve(l); });
    void exited.then((code) => reject(new Error(`jbackup serve exited (${code}) before printing its URL: ${stderr.join('')}`)));
  });
  child.stdout!.resume();
  const j = JSON.parse(first) as Omit<Served, 'child' | 'stop' | 'stderr'>;
  return {
    ...j, child, stderr,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      return exited;
    },
  };
}

/** a fresh headless chromium (own profile directory, no network services) */
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  const profile = await tmpDir('chromium-profile');
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
