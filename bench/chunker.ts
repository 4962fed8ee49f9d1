/**
 * Throughput of FastCDC.cut over 256 MiB of random data at DEFAULT_PARAMS.
 * Run: npx tsc -p tsconfig.json && node dist/bench/chunker.js [MiB] [rounds]
 */
import { randomFillSync } from 'node:crypto';
import { DEFAULT_PARAMS, FastCDC } from '../src/chunker/fastcdc.js';

const mib = Number(process.argv[2] ?? 256);
const rounds = Number(process.argv[3] ?? 5);
const size = mib * 1024 * 1024;
const data = new Uint8Array(size);
for (let o = 0; o < size; o += 1 << 24) randomFillSync(data, o, Math.min(1 << 24, size - o));

const cdc = new FastCDC(DEFAULT_PARAMS);

function pass(): { chunks: number; seconds: number } {
  const t0 = process.hrtime.bigint();
  let off = 0;
  let chunks = 0;
  while (off < size) {
    off += cdc.cut(data, off, size);
    chunks++;
  }
  return { chunks, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

pass(); // warm-up (JIT)
const speeds: number[] = [];
let chunks = 0;
for (let r = 0; r < rounds; r++) {
  const res = pass();
  chunks = res.chunks;
  speeds.push(size / 1e6 / res.seconds);
}
speeds.sort((a, b) => a - b);
const median = speeds[Math.floor(speeds.length / 2)]!;
console.log(
  `FastCDC v2020 cut, ${mib} MiB random, min/avg/max ${DEFAULT_PARAMS.min}/${DEFAULT_PARAMS.avg}/${DEFAULT_PARAMS.max} level ${DEFAULT_PARAMS.level}`,
);
console.log(
  `  ${chunks} chunks (mean ${(size / chunks / 1024).toFixed(0)} KiB); MB/s median ${median.toFixed(0)} ` +
    `(min ${speeds[0]!.toFixed(0)}, max ${speeds[speeds.length - 1]!.toFixed(0)}) over ${rounds} rounds`,
);
