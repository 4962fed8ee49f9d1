/**
 * Random irreducible polynomials of degree 53 over GF(2), as restic's chunker config needs
 * (restic validates `chunker_polynomial` on open). Polynomials are BigInts, bit i = coefficient of x^i.
 */
import { randomBytes } from 'node:crypto';

function deg(p: bigint): number {
  return p === 0n ? -1 : p.toString(2).length - 1;
}

function mod(a: bigint, m: bigint): bigint {
  const dm = deg(m);
  let da = deg(a);
  while (da >= dm) {
    a ^= m << BigInt(da - dm);
    da = deg(a);
  }
  return a;
}

function mulMod(a: bigint, b: bigint, m: bigint): bigint {
  let r = 0n;
  while (b > 0n) {
    if (b & 1n) r ^= a;
    b >>= 1n;
    a <<= 1n;
    if (a >> BigInt(deg(m))) a = mod(a, m);
  }
  return mod(r, m);
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, mod(a, b)];
  return a;
}

/** Ben-Or irreducibility test. */
export function isIrreducible(f: bigint): boolean {
  const d = deg(f);
  if (d < 1) return false;
  let x2i = 2n; // x
  for (let i = 1; i <= d >> 1; i++) {
    x2i = mulMod(x2i, x2i, f); // x^(2^i) mod f
    if (gcd(f, x2i ^ 2n) !== 1n) return false;
  }
  return true;
}

export function randomPolynomial(): bigint {
  for (let i = 0; i < 1_000_000; i++) {
    let p = randomBytes(8).readBigUInt64BE() & ((1n << 54n) - 1n);
    p |= (1n << 53n) | 1n;
    if (isIrreducible(p)) return p;
  }
  throw new Error('unable to find an irreducible polynomial');
}
