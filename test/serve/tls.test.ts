/** The self-signed certificate `serve --tls` writes (src/serve/tls.ts): valid X.509 that node's TLS client trusts when given it. */
import { afterAll, expect, it } from 'vitest';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { statSync } from 'node:fs';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { certificateSerial, ensureCertificate, selfSignedCertificate } from '../../src/serve/tls.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';

afterAll(cleanupTmpDirs);

it('is self-signed, names its hosts, and a TLS client that trusts it connects', async () => {
  const { cert, key } = selfSignedCertificate(['localhost', '127.0.0.1', '::1', 'backup.example']);
  const x = new X509Certificate(cert);
  expect(x.verify(x.publicKey)).toBe(true);
  expect(x.checkPrivateKey(createPrivateKey(key))).toBe(true);
  expect(x.checkHost('localhost')).toBe('localhost');
  expect(x.checkHost('backup.example')).toBe('backup.example');
  expect(x.checkIP('127.0.0.1')).toBe('127.0.0.1');
  expect(x.checkIP('::1')).toBe('::1');
  expect(x.checkHost('other.example')).toBeUndefined();
  expect(Date.parse(x.validTo) - Date.now()).toBeGreaterThan(800 * 86_400_000);
  const server = createServer({ cert, key }, (_q, r) => r.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    const body = await new Promise<string>((resolve, reject) => {
      request({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: cert, path: '/' }, (res) => {
        let b = '';
        res.on('data', (d: Buffer) => { b += d.toString(); });
        res.on('end', () => resolve(b));
      }).on('error', reject).end();
    });
    expect(body).toBe('ok');
  } finally {
    server.close();
  }
});

it('is kept while valid for the hosts asked, made anew otherwise; the key is 0600', async () => {
  const dir = path.join(await tmpDir('serve-tls'), 'tls');
  const a = ensureCertificate(dir, ['localhost', '127.0.0.1']);
  expect(a.created).toBe(true);
  expect(statSync(a.keyFile).mode & 0o777).toBe(0o600);
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  const b = ensureCertificate(dir, ['localhost']);
  expect(b.created).toBe(false);
  expect(b.cert).toBe(a.cert);
  const c = ensureCertificate(dir, ['localhost', '10.1.2.3']);
  expect(c.created).toBe(true);
  expect(new X509Certificate(c.cert).checkIP('10.1.2.3')).toBe('10.1.2.3');
});

it('writes serial numbers that are minimal positive DER integers (a leading zero byte is refused by OpenSSL)', () => {
  for (const first of [0x00, 0x01, 0x7f, 0x80, 0xff]) {
    const s = certificateSerial(Buffer.from([first, 0x00, 0x12, 0x34]));
    expect(s[0]! & 0x80).toBe(0);
    expect(s[0]).not.toBe(0);
  }
  for (let i = 0; i < 200; i++) expect(() => new X509Certificate(selfSignedCertificate(['localhost']).cert)).not.toThrow();
});
