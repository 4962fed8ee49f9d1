/**
 * A self-signed certificate for `serve --tls`, written without OpenSSL: Node makes the key pair
 * (ECDSA P-256) and signs, the X.509 DER around it is the few fixed structures below (RFC 5280). No
 * external program means it works the same where `openssl` is missing or differs (macOS LibreSSL,
 * Windows), and nothing of the key ever passes through a command line. Checked by the tests with
 * node's X509Certificate and `curl --cacert`.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { writeFileAtomicSync } from '../util/atomic.js';
import { mkdirpSync } from '../util/mkdirp.js';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const b: number[] = [];
  for (let x = n; x > 0; x >>= 8) b.unshift(x & 0xff);
  return Buffer.from([0x80 | b.length, ...b]);
}
const tlv = (tag: number, ...body: Buffer[]) => { const c = Buffer.concat(body); return Buffer.concat([Buffer.from([tag]), len(c.length), c]); };
const seq = (...b: Buffer[]) => tlv(0x30, ...b);
const set = (...b: Buffer[]) => tlv(0x31, ...b);
function oid(s: string): Buffer {
  const p = s.split('.').map(Number);
  const out = [40 * p[0]! + p[1]!];
  for (const v of p.slice(2)) {
    const bytes = [v & 0x7f];
    for (let x = v >>> 7; x > 0; x >>>= 7) bytes.unshift(0x80 | (x & 0x7f));
    out.push(...bytes);
  }
  return tlv(0x06, Buffer.from(out));
}
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  // UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5)
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}
function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const [head, tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = ip.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

/**
 * A positive DER INTEGER body from random bytes: the top bit cleared (else negative) and the next set
 * (a leading 0x00 before a byte < 0x80 is not minimal DER, which OpenSSL refuses: "illegal padding").
 * Clearing the top bit alone made 9 of 1,500 certificates unreadable.
 */
export function certificateSerial(random: Buffer): Buffer {
  random[0] = (random[0]! & 0x7f) | 0x40;
  return random;
}

/** a PEM certificate and PKCS#8 key for these host names / IP addresses, valid for `days` */
export function selfSignedCertificate(hosts: readonly string[], days = 825): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const name = seq(set(seq(oid('2.5.4.3'), utf8('jbackup serve'))));
  const now = Date.now();
  const sans = [...new Set(hosts)].map((h) => (isIP(h) ? tlv(0x87, ipBytes(h)) : tlv(0x82, Buffer.from(h, 'ascii'))));
  const serial = certificateSerial(randomBytes(16));
  const ext = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [tlv(0x01, Buffer.from([0xff]))] : []), tlv(0x04, value));
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, serial),
    ecdsaSha256,
    name,
    seq(time(new Date(now - 60_000)), time(new Date(now + days * 86_400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(
      ext('2.5.29.17', false, seq(...sans)),
      // a self-signed end-entity certificate: its own trust anchor (CA:TRUE lets strict verifiers take it as one)
      ext('2.5.29.19', true, seq(tlv(0x01, Buffer.from([0xff])))),
      ext('2.5.29.15', true, tlv(0x03, Buffer.from([0x07, 0x84]))), // digitalSignature, keyCertSign
      ext('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // serverAuth
    )),
  );
  const sig = sign('sha256', tbs, privateKey);
  const der = seq(tbs, ecdsaSha256, tlv(0x03, Buffer.concat([Buffer.from([0]), sig])));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return { cert: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`, key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/**
 * The certificate in `dir` (cert.pem, key.pem 0600), made when missing, expired or not covering
 * `hosts`; kept otherwise, so a client that trusted it once keeps trusting it.
 */
export function ensureCertificate(dir: string, hosts: readonly string[]): { certFile: string; keyFile: string; cert: string; key: string; created: boolean } {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  if (existsSync(certFile) && existsSync(keyFile)) {
    try {
      const cert = readFileSync(certFile, 'utf8');
      const key = readFileSync(keyFile, 'utf8');
      const x = new X509Certificate(cert);
      const fresh = Date.parse(x.validTo) > Date.now() + 86_400_000;
      const covers = hosts.every((h) => (isIP(h) ? x.checkIP(h) : x.checkHost(h)) !== undefined);
      if (fresh && covers && x.checkPrivateKey(createPrivateKey(key))) return { certFile, keyFile, cert, key, created: false };
    } catch {
      // unreadable or foreign: made anew
    }
  }
  mkdirpSync(dir, 0o700);
  const { cert, key } = selfSignedCertificate(hosts);
  writeFileAtomicSync(keyFile, key, 0o600);
  writeFileAtomicSync(certFile, cert, 0o644);
  return { certFile, keyFile, cert, key, created: true };
}
