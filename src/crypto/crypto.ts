/**
 * restic's authenticated encryption: IV(16) || AES-256-CTR(ciphertext) || Poly1305-AES(16).
 * The MAC covers the ciphertext only; its one-time key is r || AES-128_k(IV). Pure, no I/O.
 * Hot path: AES-CTR through the native addon's OpenSSL call (into a caller's buffer or in place; ~5x
 * node:crypto's update(), which returns a fresh zero-filled buffer per call), node:crypto without it,
 * and libsodium (sodium-native) for Poly1305.
 */
import { createCipheriv, randomBytes, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import { nativeAesCtr } from '../native/native.js';

const require = createRequire(import.meta.url);
// sodium-native is CommonJS with prebuilt binaries for our platforms.
const sodium = require('sodium-native') as {
  crypto_onetimeauth(out: Buffer, msg: Uint8Array, key: Buffer): void;
};

export const IV_SIZE = 16;
export const MAC_SIZE = 16;
export const OVERHEAD = IV_SIZE + MAC_SIZE;

export interface MasterKey {
  /** AES-256 key */
  encrypt: Buffer;
  /** Poly1305-AES k: AES-128 key applied to the nonce */
  macK: Buffer;
  /** Poly1305 r, always stored clamped here */
  macR: Buffer;
}

export class CryptoError extends Error {
  override name = 'CryptoError';
}

/** Clamp Poly1305 r as the Poly1305-AES paper specifies (bytes 3,7,11,15 &0x0f; 4,8,12 &0xfc). */
export function clampR(r: Uint8Array): Buffer {
  const out = Buffer.from(r);
  out[3]! &= 0x0f; out[7]! &= 0x0f; out[11]! &= 0x0f; out[15]! &= 0x0f;
  out[4]! &= 0xfc; out[8]! &= 0xfc; out[12]! &= 0xfc;
  return out;
}

export function makeMasterKey(encrypt: Uint8Array, macK: Uint8Array, macR: Uint8Array): MasterKey {
  if (encrypt.length !== 32 || macK.length !== 16 || macR.length !== 16) throw new CryptoError('invalid key length');
  const allZero = (b: Uint8Array) => b.every((x) => x === 0);
  if (allZero(encrypt) || allZero(macK) || allZero(macR)) throw new CryptoError('invalid key: all-zero component');
  return { encrypt: Buffer.from(encrypt), macK: Buffer.from(macK), macR: clampR(macR) };
}

export function randomMasterKey(): MasterKey {
  return makeMasterKey(randomBytes(32), randomBytes(16), randomBytes(16));
}

/** Key from a 64-byte KDF output: enc(32) || k(16) || r(16). */
export function keyFromKdf(out: Uint8Array): MasterKey {
  if (out.length !== 64) throw new CryptoError('KDF output must be 64 bytes');
  return makeMasterKey(out.subarray(0, 32), out.subarray(32, 48), out.subarray(48, 64));
}

const ZERO_BLOCK = new Uint8Array(16);

function aes128Block(k: Buffer, block: Uint8Array): Buffer {
  if (nativeAesCtr) {
    // AES_k(block) is the first block of CTR keystream with block as the counter
    const out = Buffer.allocUnsafe(16);
    nativeAesCtr(k, block, ZERO_BLOCK, out);
    return out;
  }
  const c = createCipheriv('aes-128-ecb', k, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(block), c.final()]);
}

/** Poly1305-AES tag over msg with nonce iv. */
export function poly1305Aes(key: MasterKey, iv: Uint8Array, msg: Uint8Array): Buffer {
  const otk = Buffer.allocUnsafe(32);
  key.macR.copy(otk, 0);
  aes128Block(key.macK, iv).copy(otk, 16);
  const tag = Buffer.allocUnsafe(16);
  sodium.crypto_onetimeauth(tag, msg, otk);
  return tag;
}

/** AES-256-CTR of data into out at outOffset (out may hold data itself at that place). */
function ctr(key: Buffer, iv: Uint8Array, data: Uint8Array, out: Buffer, outOffset: number): void {
  if (nativeAesCtr) {
    nativeAesCtr(key, iv, data, out.subarray(outOffset, outOffset + data.length));
    return;
  }
  const c = createCipheriv('aes-256-ctr', key, iv);
  const a = c.update(data);
  a.copy(out, outOffset);
  const f = c.final();
  if (f.length) f.copy(out, outOffset + a.length);
}

/** AES-256-CTR of data into a fresh buffer (node:crypto's update() is already one: no copy). */
function ctrFresh(key: Buffer, iv: Uint8Array, data: Uint8Array): Buffer {
  if (nativeAesCtr) {
    const out = Buffer.allocUnsafe(data.length);
    nativeAesCtr(key, iv, data, out);
    return out;
  }
  // CTR is a stream mode: update() returns every byte and final() none
  const c = createCipheriv('aes-256-ctr', key, iv);
  const out = c.update(data);
  const f = c.final();
  return f.length ? Buffer.concat([out, f]) : out;
}

/** Encrypt without assembling one buffer: the caller writes iv, ct, mac in this order. */
export function sealParts(key: MasterKey, plaintext: Uint8Array, iv: Uint8Array = randomBytes(IV_SIZE)): { iv: Uint8Array; ct: Buffer; mac: Buffer } {
  if (iv.length !== IV_SIZE || iv.every((x) => x === 0)) throw new CryptoError('invalid nonce');
  const ct = ctrFresh(key.encrypt, iv, plaintext);
  return { iv, ct, mac: poly1305Aes(key, iv, ct) };
}

/**
 * Encrypt plaintext into `out` (at least as long; it may be plaintext itself: in place) and return
 * the nonce and MAC that go around it. No allocation with the native AES.
 */
export function sealInto(key: MasterKey, plaintext: Uint8Array, out: Uint8Array, iv: Uint8Array = randomBytes(IV_SIZE)): { iv: Uint8Array; mac: Buffer } {
  if (iv.length !== IV_SIZE || iv.every((x) => x === 0)) throw new CryptoError('invalid nonce');
  if (out.length < plaintext.length) throw new CryptoError('output too short');
  const ct = Buffer.from(out.buffer, out.byteOffset, plaintext.length);
  ctr(key.encrypt, iv, plaintext, ct, 0);
  return { iv, mac: poly1305Aes(key, iv, ct) };
}

/** Encrypt plaintext into a fresh buffer IV || CT || MAC. */
export function seal(key: MasterKey, plaintext: Uint8Array, iv: Uint8Array = randomBytes(IV_SIZE)): Buffer {
  if (iv.length !== IV_SIZE || iv.every((x) => x === 0)) throw new CryptoError('invalid nonce');
  const out = Buffer.allocUnsafe(plaintext.length + OVERHEAD);
  Buffer.from(iv.buffer, iv.byteOffset, iv.length).copy(out, 0);
  ctr(key.encrypt, iv, plaintext, out, IV_SIZE);
  const ct = out.subarray(IV_SIZE, IV_SIZE + plaintext.length);
  poly1305Aes(key, iv, ct).copy(out, IV_SIZE + plaintext.length);
  return out;
}

/**
 * Verify the MAC (constant time) and decrypt. Throws CryptoError('ciphertext verification failed').
 * With inPlace the plaintext overwrites the ciphertext in data and is returned as a view of it (no
 * allocation; data is garbage afterwards); otherwise data is left as it is.
 */
export function open(key: MasterKey, data: Uint8Array, inPlace = false): Buffer {
  if (data.length < OVERHEAD) throw new CryptoError('ciphertext too short');
  const iv = data.subarray(0, IV_SIZE);
  if (iv.every((x) => x === 0)) throw new CryptoError('nonce is invalid');
  const ct = data.subarray(IV_SIZE, data.length - MAC_SIZE);
  const mac = data.subarray(data.length - MAC_SIZE);
  const want = poly1305Aes(key, iv, ct);
  if (!timingSafeEqual(want, mac)) throw new CryptoError('ciphertext verification failed');
  if (!inPlace) return ctrFresh(key.encrypt, iv, ct);
  const out = Buffer.from(ct.buffer, ct.byteOffset, ct.length);
  ctr(key.encrypt, iv, ct, out, 0);
  return out;
}

export function masterKeyToJSON(key: MasterKey): string {
  return JSON.stringify({
    mac: { k: key.macK.toString('base64'), r: key.macR.toString('base64') },
    encrypt: key.encrypt.toString('base64'),
  });
}

export function masterKeyFromJSON(text: string): MasterKey {
  const j = JSON.parse(text) as { mac?: { k?: string; r?: string }; encrypt?: string };
  if (!j.mac?.k || !j.mac?.r || !j.encrypt) throw new CryptoError('invalid master key JSON');
  return makeMasterKey(Buffer.from(j.encrypt, 'base64'), Buffer.from(j.mac.k, 'base64'), Buffer.from(j.mac.r, 'base64'));
}
