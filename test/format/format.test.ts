import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { goAddDate, goLocalTime, isoWeek, parseGoTime, parseTimeNs, resticTimeFormat, wallClock } from '../../src/format/gotime.js';
import { goModeString, GoMode } from '../../src/format/gomode.js';

const formatDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/format');

describe('src/format', () => {
  it('is pure: imports only its own modules and node: built-ins', () => {
    const files = fs.readdirSync(formatDir).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const src = fs.readFileSync(path.join(formatDir, f), 'utf8');
      for (const m of src.matchAll(/(?:\bfrom|^\s*import)\s+'([^']+)'/gm)) {
        expect(/^node:/.test(m[1]!) || /^\.\/[\w-]+\.js$/.test(m[1]!), `${f} imports ${m[1]}`).toBe(true);
      }
      expect(/\bprocess\.(env|argv|stdout|stderr|stdin)\b|from 'node:fs'/.test(src), `${f} does I/O or reads the environment`).toBe(false);
    }
  });

  it("Go's AddDate normalises month overflow through the day count, as time.Date does", () => {
    const utc = (s: string) => parseGoTime(s, 'UTC');
    // Go: time.Date(2023, 1, 31, ...).AddDate(0, 1, 0) is March 3 (February 31 normalised)
    expect(goAddDate(utc('2023-01-31T10:00:00Z'), 0, 1, 0, 'UTC')).toBe(parseTimeNs('2023-03-03T10:00:00Z'));
    expect(goAddDate(utc('2024-03-31T10:00:00Z'), 0, -1, 0, 'UTC')).toBe(parseTimeNs('2024-03-02T10:00:00Z'));
    expect(goAddDate(utc('2024-02-29T00:00:00Z'), -1, 0, 0, 'UTC')).toBe(parseTimeNs('2023-03-01T00:00:00Z'));
    // a fixed offset keeps its wall clock
    const fixed = parseGoTime('2024-01-15T23:30:00+05:00', 'UTC');
    expect(fixed.loc).toBe('fixed');
    expect(goAddDate(fixed, 0, 0, 1, 'UTC')).toBe(parseTimeNs('2024-01-16T23:30:00+05:00'));
    expect(wallClock(fixed)).toMatchObject({ y: 2024, m: 1, d: 15, hour: 23 });
  });

  it("ISOWeek as Go's: early January can belong to the previous year's last week", () => {
    const days = (s: string) => Number(parseTimeNs(s + 'T00:00:00Z') / 86_400_000_000_000n);
    expect(isoWeek(days('2021-01-03'))).toEqual({ year: 2020, week: 53 });
    expect(isoWeek(days('2021-01-04'))).toEqual({ year: 2021, week: 1 });
    expect(isoWeek(days('2024-12-30'))).toEqual({ year: 2025, week: 1 });
  });

  it("restic's TimeFormat and FileMode.String()", () => {
    expect(resticTimeFormat(new Date(2024, 0, 2, 3, 4, 5))).toBe('2024-01-02 03:04:05');
    expect(goLocalTime('not a time')).toBe('not a time');
    expect(goModeString(0o644)).toBe('-rw-r--r--');
    expect(goModeString((GoMode.Dir | 0o755) >>> 0)).toBe('drwxr-xr-x');
    expect(goModeString((GoMode.Symlink | GoMode.Setuid | 0o777) >>> 0)).toBe('Lurwxrwxrwx');
  });
});
