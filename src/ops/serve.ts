/**
 * `serve` as an operation: a non-exclusive lock held (and refreshed) for the server's life, the index
 * loaded, the snapshot file system and the HTTP(S) server started. The caller stops it with close().
 */
import { isIP } from 'node:net';
import { UserError } from '../repo/errors.js';
import type { Repository } from '../repo/repository.js';
import { startServer, type RunningServer } from '../serve/server.js';
import { Access } from '../serve/auth.js';
import { ensureCertificate } from '../serve/tls.js';
import { SnapshotFs, type VfsOptions } from '../serve/vfs.js';
import { lockAndLoadIndex, unlockRepository, type LockOptions } from './lock.js';

export interface ServeOptions extends LockOptions, VfsOptions {
  /** "host:port", "[v6]:port" or ":port" (default 127.0.0.1:0: a free port) */
  listen?: string;
  /** the access secret (default: random for this run) */
  token?: string;
  /** HTTPS: the user's own certificate and key (PEM text), or a self-signed one kept in this directory */
  tls?: { cert: string; key: string } | { selfSignedDir: string };
  log?: (message: string) => void;
}

export interface ServeHandle extends RunningServer {
  /** the self-signed certificate's file, when one is used */
  certFile?: string;
  certCreated?: boolean;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen);
  if (!m || Number(m[3]) > 65535) throw new UserError(`invalid --listen "${listen}": expected host:port, [ipv6]:port or :port (port 0: any free port)`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port: Number(m[3]) };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return /^(0*:)*:?0*1$/.test(host) || /^::ffff:127\./i.test(host);
  return false;
}

export async function serve(repo: Repository, o: ServeOptions = {}): Promise<ServeHandle> {
  const { host, port } = parseListen(o.listen ?? '127.0.0.1:0');
  if (!isLoopback(host) && !o.tls) throw new UserError(`refusing to serve on ${host} without --tls: anyone on the network could read the password and the backups (use --tls, or listen on 127.0.0.1)`);
  let tls: { cert: string; key: string } | undefined;
  let certFile: string | undefined;
  let certCreated: boolean | undefined;
  if (o.tls && 'selfSignedDir' in o.tls) {
    const hosts = [...new Set(['localhost', '127.0.0.1', '::1', host === '0.0.0.0' || host === '::' ? 'localhost' : host])];
    const c = ensureCertificate(o.tls.selfSignedDir, hosts);
    tls = { cert: c.cert, key: c.key };
    certFile = c.certFile;
    certCreated = c.created;
  } else if (o.tls) {
    tls = o.tls;
  }
  const lock = await lockAndLoadIndex(repo, false, o);
  let running: RunningServer;
  try {
    const vfs = new SnapshotFs(repo, o);
    await vfs.snapshots();
    running = await startServer(repo, vfs, { host, port, token: o.token ?? Access.randomToken(), ...(tls ? { tls } : {}), ...(o.log ? { log: o.log } : {}) });
  } catch (e) {
    await unlockRepository(lock, o).catch(() => {});
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new UserError(`cannot listen on ${o.listen}: the address is in use`);
    if ((e as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL') throw new UserError(`cannot listen on ${o.listen}: no such local address`);
    throw e;
  }
  let closed: Promise<void> | null = null;
  return {
    ...running,
    ...(certFile ? { certFile, certCreated } : {}),
    close: () => (closed ??= running.close().finally(() => unlockRepository(lock, o))),
  };
}
