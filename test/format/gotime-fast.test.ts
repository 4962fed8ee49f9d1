/**
 * formatTimeNs's local-zone fast path (numbers, one Date) writes exactly what the general path
 * (BigInts, restic's FixTime clamping) writes, in zones with DST, half- and quarter-hour offsets
 * and historical offsets with seconds (LMT), around transitions and for every kind of fraction.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { formatTimeNs, formatTimeNsGeneral, formatTimeSec } from '../../src/format/gotime.js';

const savedTZ = process.env.TZ;
afterAll(() => {
  if (savedTZ === undefined) delete process.env.TZ;
  else process.env.TZ = savedTZ;
});

describe('formatTimeNs fast path', () => {
  const zones = ['UTC', 'Europe/Oslo', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Pacific/Chatham', 'America/St_Johns', 'Africa/Monrovia'];
  for (const tz of zones) {
    it(`equals the general path in ${tz}`, () => {
      process.env.TZ = tz;
      let seed = 987654321;
      const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
      const secs: number[] = [];
      // 1850..2200 at random, plus every 15 minutes around the 2024 transitions of most zones
      for (let k = 0; k < 4000; k++) secs.push(Math.floor(-3.8e9 + rnd() * 1.1e10));
      for (const t0 of [1711846800, 1729990800, 1710054000, 1730613600, 1712412000, 1727532000]) {
        for (let d = -8 * 3600; d <= 8 * 3600; d += 900) secs.push(t0 + d, t0 + d - 1);
      }
      secs.push(0, -1, 1, -62135596800 + 86400 * 400 * 365, 253_000_000_000 - 1);
      secs.forEach((sec, k) => {
        const nsec = [0, 1, 10, 999_999_999, 500_000_000, 123_456_789, 100, Math.floor(rnd() * 1e9)][k % 8]!;
        const want = formatTimeNsGeneral(BigInt(sec), nsec);
        expect(formatTimeNs(BigInt(sec), nsec), `${tz} ${sec}.${nsec}`).toBe(want);
        expect(formatTimeSec(sec, nsec), `${tz} ${sec}.${nsec}`).toBe(want);
      });
    });
  }

  it('is used only where it is exact: years outside 100..9999 and fixed offsets take the general path', () => {
    process.env.TZ = 'America/New_York';
    expect(formatTimeNs(-62135596800n, 0)).toBe(formatTimeNsGeneral(-62135596800n, 0));
    expect(formatTimeNs(-59000000000n, 5)).toBe(formatTimeNsGeneral(-59000000000n, 5));
    expect(formatTimeNs(300_000_000_000n, 0)).toBe(formatTimeNsGeneral(300_000_000_000n, 0));
    expect(formatTimeSec(-62135596800, 0)).toBe(formatTimeNsGeneral(-62135596800n, 0));
    expect(formatTimeSec(1e15, 7)).toBe(formatTimeNsGeneral(10n ** 15n, 7));
    expect(formatTimeSec(1_700_000_000, 0, 90)).toBe('2023-11-14T23:43:20+01:30');
    expect(formatTimeNs(1_700_000_000n, 0, 90)).toBe('2023-11-14T23:43:20+01:30');
    expect(formatTimeNs(-2_800_000_000n, 0)).toMatch(/-04:56$/); // LMT, -4:56:02: Go drops the seconds of the offset too
  });
});
