/**
 * The web layer over loopback HTTP without the server core: a minimal server that routes as the
 * contract says (`/_/…` and GET of a directory from a browser to handleWeb, files as whole bodies),
 * so page tests do not depend on auth, WebDAV or the CLI. The end-to-end test runs `jbackup serve`.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { openRepository } from '../../src/ops/repository.js';
import type { Repository } from '../../src/repo/repository.js';
import type { WebContext } from '../../src/serve/context.js';
import { contentType } from '../../src/serve/mime.js';
import { hrefOf, splitUrlPath } from '../../src/serve/names.js';
import { SnapshotFs } from '../../src/serve/vfs.js';
import { handleWeb } from '../../src/serve/web/index.js';

export interface Harness {
  url: string; repo: Repository; logs: string[];
  /** resolves once no request is being handled (a handler that never ends keeps it pending) */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(repoPath: string, password: string): Promise<Harness> {
  const repo = await openRepository(repoPath, password);
  await repo.loadIndex();
  const vfs = new SnapshotFs(repo);
  const logs: string[] = [];
  const ctx: WebContext = {
    vfs, repo, baseUrl: '',
    async sendFile(req, res, e, o = {}) {
      const headers: Record<string, string | number> = { 'Content-Type': o.contentType ?? contentType(e.name), 'Content-Length': e.size, ETag: e.etag };
      res.writeHead(200, headers);
      if (req.method === 'HEAD') { res.end(); return; }
      for await (const b of vfs.open(e).read(0, e.size)) res.write(b);
      res.end();
    },
    sendError(req, res, status, message) { res.writeHead(status, { 'Content-Type': 'text/plain' }); res.end(req.method === 'HEAD' ? undefined : `${message}\n`); },
    hrefOf, contentType,
    log: (m) => { logs.push(m); },
  };
  let busy = 0;
  let waiters: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    busy++;
    void (async () => {
      const segs = splitUrlPath(new URL(req.url ?? '/', 'http://x').pathname);
      if (!segs) { ctx.sendError(req, res, 400, 'bad path'); return; }
      if (segs[0] === '_' || (req.headers.accept ?? '').includes('text/html')) {
        if (await handleWeb(ctx, req, res, segs)) return;
      }
      const e = await vfs.stat(segs);
      if (!e) { ctx.sendError(req, res, 404, 'not found'); return; }
      if (e.kind === 'dir') { ctx.sendError(req, res, 406, 'a directory'); return; }
      await ctx.sendFile(req, res, e);
    })().catch((err: Error) => { logs.push(`error: ${err.stack}`); if (!res.headersSent) res.writeHead(500); res.end(); })
      .finally(() => { if (--busy === 0) { for (const w of waiters) w(); waiters = []; } });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`, repo, logs,
    idle: () => (busy === 0 ? Promise.resolve() : new Promise<void>((r) => waiters.push(r))),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await repo.backend.close();
    },
  };
}
