/**
 * Test CA and server certificate for the emulator, made with the `openssl` CLI and kept in
 * `<stateDir>/tls/` so restarts reuse them (clients keep trusting the same CA file).
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/** Names the server certificate is valid for. */
export const CERT_DNS_NAMES = ['jfs.jottacloud.com', 'api.jottacloud.com', 'id.jottacloud.com', 'up.jottacloud.com', 'localhost'];
export const CERT_IPS = ['127.0.0.1'];

export interface TlsMaterial {
  caCertPath: string;
  caCertPem: string;
  cert: string;
  key: string;
}

function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`openssl ${args[0]} failed: ${err.message}\n${stderr}`));
      else resolve();
    });
  });
}

const SAN_LINE = `subjectAltName=${[...CERT_DNS_NAMES.map((d) => `DNS:${d}`), ...CERT_IPS.map((i) => `IP:${i}`)].join(',')}`;

export async function ensureTls(stateDir: string): Promise<TlsMaterial> {
  const dir = path.join(stateDir, 'tls');
  await fsp.mkdir(dir, { recursive: true });
  const caKey = path.join(dir, 'ca.key');
  const caPem = path.join(dir, 'ca.pem');
  const key = path.join(dir, 'server.key');
  const crt = path.join(dir, 'server.pem');
  const sanFile = path.join(dir, 'server.san');

  if (!existsSync(caKey) || !existsSync(caPem)) {
    const tmpKey = `${caKey}.tmp`;
    const tmpPem = `${caPem}.tmp`;
    await openssl(
      [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', tmpKey, '-out', tmpPem, '-days', '3650', '-sha256',
        '-subj', '/CN=jbackup Jottacloud Emulator Test CA',
        '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
        '-addext', 'subjectKeyIdentifier=hash',
      ],
      dir,
    );
    await fsp.rename(tmpKey, caKey);
    await fsp.rename(tmpPem, caPem);
    await fsp.rm(crt, { force: true }); // a new CA invalidates the old leaf
  }

  const sanOk = existsSync(sanFile) && (await fsp.readFile(sanFile, 'utf8')) === SAN_LINE;
  if (!existsSync(key) || !existsSync(crt) || !sanOk) {
    const csr = path.join(dir, 'server.csr');
    const ext = path.join(dir, 'server.ext');
    const tmpKey = `${key}.tmp`;
    const tmpCrt = `${crt}.tmp`;
    await fsp.writeFile(
      ext,
      [SAN_LINE, 'extendedKeyUsage=serverAuth', 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'authorityKeyIdentifier=keyid', ''].join('\n'),
    );
    await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', tmpKey, '-out', csr, '-subj', '/CN=jfs.jottacloud.com'], dir);
    await openssl(
      ['x509', '-req', '-in', csr, '-CA', caPem, '-CAkey', caKey, '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-out', tmpCrt, '-days', '825', '-sha256', '-extfile', ext],
      dir,
    );
    await fsp.rename(tmpKey, key);
    await fsp.rename(tmpCrt, crt);
    await fsp.writeFile(sanFile, SAN_LINE);
    await fsp.rm(csr, { force: true });
    await fsp.rm(ext, { force: true });
  }

  return {
    caCertPath: caPem,
    caCertPem: await fsp.readFile(caPem, 'utf8'),
    cert: await fsp.readFile(crt, 'utf8'),
    key: await fsp.readFile(key, 'utf8'),
  };
}
