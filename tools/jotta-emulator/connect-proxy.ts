/**
 * Minimal loopback HTTP CONNECT proxy for pointing real clients (e.g. rclone via HTTPS_PROXY)
 * at a local server: `CONNECT jfs.jottacloud.com:443` is tunnelled to a local port.
 * Only hosts listed in `routes` (or matched by `route`) are tunnelled; everything else is
 * refused, so nothing ever leaves the machine.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface ConnectTarget {
  host: string;
  port: number;
}

export interface ConnectProxyOptions {
  /** "host:port" (or just "host", any port) → target. */
  routes?: Record<string, ConnectTarget>;
  /** Fallback resolver; return null to refuse. */
  route?: (host: string, port: number) => ConnectTarget | null;
}

export interface ConnectProxy {
  /** e.g. `http://127.0.0.1:PORT` (use as HTTPS_PROXY). */
  url: string;
  port: number;
  /** Every CONNECT request seen, as "host:port", in order. */
  connects: string[];
  /** CONNECT requests that were refused. */
  refused: string[];
  close(): Promise<void>;
}

/** Proxy that tunnels every CONNECT for the given host names to one local port. */
export function tunnelHostsTo(hosts: string[], port: number, host = '127.0.0.1'): ConnectProxyOptions {
  const set = new Set(hosts.map((h) => h.toLowerCase()));
  return { route: (h) => (set.has(h.toLowerCase()) ? { host, port } : null) };
}

export async function startConnectProxy(opts: ConnectProxyOptions): Promise<ConnectProxy> {
  const connects: string[] = [];
  const refused: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => {
    res.writeHead(405, { 'Content-Type': 'text/plain', Connection: 'close' });
    res.end('only CONNECT is supported\n');
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const authority = req.url ?? '';
    connects.push(authority);
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(authority);
    const host = m ? m[1]! : authority;
    const port = m ? Number(m[2]) : 443;
    const target = opts.routes?.[`${host}:${port}`] ?? opts.routes?.[host] ?? opts.route?.(host, port) ?? null;
    client.on('error', () => client.destroy());
    if (!target) {
      refused.push(authority);
      client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const upstream = net.connect(target.port, target.host);
    let connected = false;
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => {
      if (!connected && client.writable) client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      else client.destroy();
    });
    upstream.on('connect', () => {
      connected = true;
      client.write('HTTP/1.1 200 Connection established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    connects,
    refused,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
