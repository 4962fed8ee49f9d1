/**
 * Numeric flag values, checked where each command reads its options: one parser per kind, and an
 * error that names the flag and the value ("invalid value "abc" for --latest: …", exit 1). Number()
 * alone accepts "", " 5", "0x10", "1e3" and "Infinity"; these accept plain decimal numbers only.
 */
import { UserError } from '../repo/errors.js';

function bad(flag: string, v: string, want: string): UserError {
  return new UserError(`invalid value "${v}" for ${flag}: ${want}`);
}

/** a whole number, at least `min` (and at most `max`) */
export function intFlag(flag: string, v: string | undefined, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  const want = max === Number.MAX_SAFE_INTEGER ? `expected a whole number of at least ${min}` : `expected a whole number from ${min} to ${max}`;
  if (!/^\d+$/.test(v)) throw bad(flag, v, want);
  const n = Number(v);
  if (n < min || n > max) throw bad(flag, v, want);
  return n;
}

/** a number greater than zero (a rate), decimals allowed */
export function positiveFlag(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = /^(\d+(\.\d*)?|\.\d+)$/.test(v) ? Number(v) : NaN;
  if (!(n > 0) || !Number.isFinite(n)) throw bad(flag, v, 'expected a number greater than 0');
  return n;
}

/** a value for an existing parser (sizes, subsets, limits), its error prefixed with the flag and value */
export function parsedFlag<T>(flag: string, v: string | undefined, parse: (s: string) => T): T | undefined {
  if (v === undefined) return undefined;
  try {
    return parse(v);
  } catch (e) {
    throw new UserError(`invalid value "${v}" for ${flag}: ${(e as Error).message.replace(/^Fatal: /, '')}`);
  }
}

/** commander argument parsers that check a value when it is parsed and keep it as given */
export const validInt = (flag: string, min = 0, max?: number) => (v: string): string => { intFlag(flag, v, min, max); return v; };
export const validParsed = (flag: string, parse: (s: string) => unknown) => (v: string): string => { parsedFlag(flag, v, parse); return v; };

