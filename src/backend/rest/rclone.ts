/**
 * `rclone:<remote>:<path>` as restic does it: start `rclone serve restic --stdio <remote>:<path>`
 * (program and arguments configurable, restic 0.14's defaults) and speak HTTP/2 with prior knowledge
 * over the child's stdin/stdout; the REST protocol on top is src/backend/rest/protocol.ts.
 *
 * The child:
 * - is started on the first request (a command that fails before touching the repository starts none)
 *   in its own process group, so a Ctrl-C at the terminal reaches jbackup only: jbackup still removes
 *   its lock through it, then stops it;
 * - is stopped on close (end of its stdin: `serve --stdio` exits at EOF; SIGTERM after 5 s, SIGKILL
 *   after 2 more) and, synchronously, when jbackup exits by any path (a signal included). If jbackup
 *   is killed outright, the child reads EOF on its stdin and exits by itself;
 * - its stderr is kept (last 20 lines) and shown when it fails or exits early; with a logger (-v)
 *   every line is passed on as "rclone: …", as restic prints them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as http2 from 'node:http2';
import { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { totalLength } from '../backend.js';
import { TransientError } from '../decorators/retry.js';
import { BodySink } from '../net.js';
import { RestBackend, type RestRequest, type RestResponse, type RestTransport } from './protocol.js';

export const RCLONE_DEFAULT_PROGRAM = 'rclone';
/** restic 0.14's rclone.args */
export const RCLONE_DEFAULT_ARGS = 'serve restic --stdio --b2-hard-delete';

export interface RcloneOptions {
  /** the program (shell words: may carry its own arguments), default "rclone" */
  program?: string;
  /** arguments before the remote (shell words), default restic's */
  args?: string;
  connections?: number;
  /** each line rclone writes to stderr (the CLI passes one with -v) */
  logger?: (line: string) => void;
}

export function isRcloneLocation(location: string): boolean {
  return location.startsWith('rclone:');
}

/**
 * A remote with the values of secret-looking connection-string parameters replaced by *** (an
 * on-the-fly remote may carry them: `:s3,access_key_id=…,secret_access_key=…:bucket`).
 */
export function redactRcloneRemote(s: string): string {
  return s.replace(/([A-Za-z0-9_-]+)=("[^"]*"|'[^']*'|[^,:\s]*)/g, (m, k: string) => (/pass|secret|key|token|cred|auth/i.test(k) ? `${k}=***` : m));
}

/** The rclone child failed (could not start, exited, broke the connection): not retried. */
export class RcloneError extends Error {
  override name = 'RcloneError';
}

/** Split shell words as restic's SplitShellStrings: blanks separate, '…' and "…" quote, no escapes in '…'. */
export function splitShellWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < s.length && (s[i + 1] === '"' || s[i + 1] === '\\')) cur += s[++i];
      else cur += c;
      continue;
    }
    if (c === '"' || c === "'") { quote = c; has = true; continue; }
    if (c === '\\' && i + 1 < s.length) { cur += s[++i]; has = true; continue; }
    if (/\s/.test(c)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
      continue;
    }
    cur += c;
  }
  if (quote) throw new RcloneError(`unbalanced ${quote} in "${s}"`);
  if (has || cur) out.push(cur);
  return out;
}

/** children alive in this process, stopped synchronously when it exits */
const liveChildren = new Set<ChildProcess>();
let exitHook = false;
function track(c: ChildProcess): void {
  liveChildren.add(c);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const ch of liveChildren) {
        try { ch.kill('SIGTERM'); } catch { /* gone */ }
      }
    });
  }
}

const STDERR_LINES = 20;

export class RcloneTransport implements RestTransport {
  private started: Promise<http2.ClientHttp2Session> | null = null;
  private child: ChildProcess | null = null;
  private session: http2.ClientHttp2Session | null = null;
  private exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private exitWaiters: (() => void)[] = [];
  private closing = false;
  private readonly stderrTail: string[] = [];
  private partial = '';
  readonly argv: string[];

  constructor(readonly remote: string, private readonly opts: RcloneOptions = {}) {
    const prog = splitShellWords(opts.program ?? RCLONE_DEFAULT_PROGRAM);
    if (prog.length === 0) throw new RcloneError('--rclone-program is empty');
    this.argv = [...prog, ...splitShellWords(opts.args ?? RCLONE_DEFAULT_ARGS), remote];
  }

  /** the child's pid once started (tests) */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** what rclone last wrote to stderr, for error messages: its last line, on the same line (the CLI prints one) */
  private tail(): string {
    const lines = this.stderrTail.map((l) => l.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, '').trim()).filter((l) => l && !/^NOTICE: Config file .* not found/.test(l));
    return lines.length ? `; rclone said: ${redactRcloneRemote(lines.at(-1)!)}` : '';
  }

  /** the last lines rclone wrote to stderr (all kept lines, as written) */
  get stderrLines(): readonly string[] {
    return this.stderrTail;
  }

  private onStderr(chunk: Buffer): void {
    const text = this.partial + chunk.toString('utf8');
    const lines = text.split('\n');
    this.partial = lines.pop()!;
    for (const l of lines) {
      const line = l.replace(/\r$/, '');
      this.stderrTail.push(line);
      if (this.stderrTail.length > STDERR_LINES) this.stderrTail.shift();
      this.opts.logger?.(`rclone: ${redactRcloneRemote(line)}`);
    }
  }

  private exitText(): string {
    const x = this.exited!;
    return x.signal ? `rclone was stopped by ${x.signal}` : `rclone exited with status ${x.code}`;
  }

  private start(): Promise<http2.ClientHttp2Session> {
    return (this.started ??= this.startOnce().catch((e) => {
      this.kill();
      throw e;
    }));
  }

  private async startOnce(): Promise<http2.ClientHttp2Session> {
    const [program, ...args] = this.argv;
    const child = spawn(program!, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.child = child;
    child.stderr!.on('data', (c: Buffer) => this.onStderr(c));
    child.stdin!.on('error', () => {}); // EPIPE once it exited: reported through the exit
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (e: NodeJS.ErrnoException) => {
        reject(e.code === 'ENOENT'
          ? new RcloneError(`rclone: program "${program}" was not found${program!.includes('/') ? '' : ' in PATH'}: install rclone or name it with --rclone-program`)
          : new RcloneError(`rclone: cannot start "${program}": ${e.message}`));
      });
    });
    child.once('exit', (code, signal) => {
      this.exited = { code, signal };
      liveChildren.delete(child);
      if (this.partial) { this.stderrTail.push(this.partial); this.partial = ''; }
      for (const w of this.exitWaiters.splice(0)) w();
      this.session?.destroy();
    });
    await spawned;
    track(child);
    const duplex = Duplex.from({ readable: child.stdout!, writable: child.stdin! });
    duplex.on('error', () => {}); // reported through the session/exit
    const session = http2.connect('http://localhost', {
      createConnection: () => duplex as unknown as import('node:net').Socket,
      // packs are 16 MiB: a 64 KiB window would make every download wait on window updates
      settings: { initialWindowSize: 16 * 1024 * 1024, enablePush: false },
      maxSessionMemory: 256,
    });
    session.on('error', () => {}); // each stream reports its own failure
    session.on('connect', () => {
      try { session.setLocalWindowSize(64 * 1024 * 1024); } catch { /* closed */ }
    });
    this.session = session;
    // as restic: a request for a file that does not exist shows that rclone answers HTTP
    const probe = await this.request(session, { method: 'GET', path: `file-${randomBytes(8).toString('hex')}` }).catch(async (e) => {
      await this.waitExit(2000);
      if (this.exited) throw new RcloneError(`rclone: ${this.exitText()} before answering${this.tail()}`);
      throw new RcloneError(`error talking HTTP to rclone: ${(e as Error).message}${this.tail()}`);
    });
    void probe;
    return session;
  }

  private waitExit(ms: number): Promise<void> {
    if (this.exited || !this.child) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.exitWaiters.push(() => { clearTimeout(t); resolve(); });
    });
  }

  private request(session: http2.ClientHttp2Session, req: RestRequest): Promise<RestResponse> {
    return new Promise<RestResponse>((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      const hasBody = req.body !== undefined;
      try {
        const headers: http2.OutgoingHttpHeaders = { ':method': req.method, ':path': `/${req.path}${req.query ? `?${req.query}` : ''}`, ...(req.headers ?? {}) };
        if (hasBody) headers['content-length'] = totalLength(req.body!);
        stream = session.request(headers, { endStream: !hasBody });
      } catch (e) {
        reject(e);
        return;
      }
      let status = 0;
      let resHeaders: RestResponse['headers'] = {};
      const sink = new BodySink(req.into);
      stream.on('response', (h) => {
        status = Number(h[':status']);
        resHeaders = h as RestResponse['headers'];
      });
      const onData = req.onData;
      let stopped = false;
      stream.on('data', (c: Buffer) => {
        if (onData) {
          // (the 'response' event may come after the first chunks: the status is not known here)
          if (!stopped && !onData(c)) {
            stopped = true;
            // the headers arrived before this data: their event, if not yet emitted, is next
            const done = () => resolve({ status, headers: resHeaders, body: Buffer.alloc(0) });
            if (status) done();
            else stream.once('response', () => done());
            stream.close(http2.constants.NGHTTP2_CANCEL);
          }
          return;
        }
        sink.push(c);
      });
      stream.on('end', () => {
        if (!status) reject(new Error('the connection closed before an answer'));
        else resolve({ status, headers: resHeaders, body: onData ? Buffer.alloc(0) : sink.result() });
      });
      stream.on('error', reject);
      stream.on('close', () => {
        if (stopped) return;
        if (stream.rstCode && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) reject(new Error(`stream reset (code ${stream.rstCode})`));
        else if (!status) reject(new Error('the connection closed before an answer'));
      });
      if (hasBody) void this.writeBody(stream, req.body!).catch(reject);
    });
  }

  private async writeBody(stream: http2.ClientHttp2Stream, parts: readonly Uint8Array[]): Promise<void> {
    for (const p of parts) {
      if (p.length === 0) continue;
      if (!stream.write(p)) {
        await new Promise<void>((resolve, reject) => {
          const done = (e?: unknown) => { stream.off('drain', ok); stream.off('close', closed); if (e) reject(e); else resolve(); };
          const ok = () => done();
          const closed = () => done(new Error('stream closed while sending'));
          stream.once('drain', ok);
          stream.once('close', closed);
        });
      }
    }
    stream.end();
  }

  /**
   * While no request is in flight the child, its pipes and the HTTP/2 session do not keep the process
   * alive: a command that ends without closing its repository exits at once (the `exit` hook stops the
   * child) instead of waiting for the CLI's 2 s safety net.
   */
  private inflight = 0;
  private setRef(on: boolean): void {
    const c = this.child;
    if (!c) return;
    for (const st of [c.stdin, c.stdout, c.stderr] as (NodeJS.EventEmitter & { ref?: () => void; unref?: () => void } | null)[]) {
      if (on) st?.ref?.(); else st?.unref?.();
    }
    if (on) { c.ref(); this.session?.ref(); } else { c.unref(); this.session?.unref(); }
  }

  async send(req: RestRequest): Promise<RestResponse> {
    if (this.closing) throw new RcloneError('rclone: the backend is closed');
    if (this.inflight++ === 0) this.setRef(true);
    try {
      return await this.sendNow(req);
    } finally {
      if (--this.inflight === 0 && !this.closing) this.setRef(false);
    }
  }

  private async sendNow(req: RestRequest): Promise<RestResponse> {
    const session = await this.start();
    if (this.exited) throw new RcloneError(`rclone: ${this.exitText()}${this.tail()}`);
    try {
      return await this.request(session, req);
    } catch (e) {
      // the child died under us: nothing to retry (restic does not restart it either)
      await this.waitExit(200);
      if (this.exited || session.destroyed) {
        throw new RcloneError(`${req.method} /${req.path}: ${this.exited ? this.exitText() : 'the connection to rclone closed'}${this.tail()}`);
      }
      throw new TransientError(`${req.method} /${req.path}: ${(e as Error).message}`);
    }
  }

  private kill(): void {
    const c = this.child;
    if (c && !this.exited) {
      try { c.kill('SIGTERM'); } catch { /* gone */ }
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    const c = this.child;
    if (!c) return;
    this.setRef(true);
    await this.started?.catch(() => {});
    if (!this.exited) {
      // end the HTTP/2 session and stdin: `serve restic --stdio` exits at EOF
      await new Promise<void>((resolve) => {
        const s = this.session;
        if (!s || s.closed || s.destroyed) { resolve(); return; }
        const t = setTimeout(() => { s.destroy(); resolve(); }, 2000);
        s.close(() => { clearTimeout(t); resolve(); });
      });
      c.stdin?.end();
      await this.waitExit(5000);
      if (!this.exited) {
        c.kill('SIGTERM');
        await this.waitExit(2000);
        if (!this.exited) c.kill('SIGKILL');
        await this.waitExit(2000);
      }
    }
    liveChildren.delete(c);
    c.stdout?.destroy();
    c.stderr?.destroy();
  }
}

/** a RestBackend over an rclone child for an `rclone:` location */
export function openRcloneBackend(location: string, opts: RcloneOptions = {}): RestBackend & { rclone: RcloneTransport } {
  const remote = location.slice('rclone:'.length);
  if (!remote) throw new RcloneError('invalid rclone: location: expected rclone:<remote>:<path>');
  const t = new RcloneTransport(remote, opts);
  const be = new RestBackend(`rclone:${redactRcloneRemote(remote)}`, t, { connections: opts.connections ?? 5 });
  return Object.assign(be, { rclone: t });
}
