/** Profile hooks: shell commands run before/after a run and on failure. */
import { spawn } from 'node:child_process';

export interface HookResult {
  ok: boolean;
  /** e.g. "exit code 3", "timed out after 60 s" */
  detail: string;
}

/** the environment hooks see: the run's own, minus any password, plus the JBACKUP_* facts */
export function hookEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['JBACKUP_PASSWORD', 'JBACKUP_PASSWORD_FILE', 'JBACKUP_PASSWORD_COMMAND']) delete env[k];
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

const running = new Set<number>();

/** end the process groups of hooks still running (the run is being interrupted) */
export function killRunningHooks(): void {
  for (const pid of running) {
    try { process.kill(-pid, 'SIGTERM'); } catch { /* gone */ }
  }
  running.clear();
}

export function runHook(command: string, env: NodeJS.ProcessEnv, o: { timeoutMs: number; stdin?: string }): Promise<HookResult> {
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn('/bin/sh', ['-c', command], { env, stdio: [o.stdin === undefined ? 'ignore' : 'pipe', 'inherit', 'inherit'], detached: true });
    } catch (e) {
      resolve({ ok: false, detail: `cannot start: ${(e as Error).message}` });
      return;
    }
    if (child.pid !== undefined) running.add(child.pid);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* gone */ }
      setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 5000).unref();
    }, o.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: `cannot start: ${e.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (child.pid !== undefined) running.delete(child.pid);
      if (timedOut) resolve({ ok: false, detail: `timed out after ${Math.round(o.timeoutMs / 1000)} s` });
      else if (code === 0) resolve({ ok: true, detail: 'exit code 0' });
      else resolve({ ok: false, detail: signal ? `killed by ${signal}` : `exit code ${code}` });
    });
    if (child.stdin) {
      child.stdin.on('error', () => { /* the hook need not read its input */ });
      child.stdin.end(o.stdin);
    }
  });
}
