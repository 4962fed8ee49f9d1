#!/usr/bin/env node
/**
 * CLI: `node dist/tools/jotta-emulator/main.js --state DIR [--tls] [--port N] [--faults SPEC] [--seed N] [--quirks a,b]`
 * Prints one JSON line `{"url","loginToken","username","caCert"}` on stdout once listening.
 * Stops on SIGINT/SIGTERM, and when its parent process goes away.
 */
import { Command, InvalidArgumentError } from 'commander';
import { parseQuirks, QUIRKS, startEmulator } from './server.js';

function int(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('not an integer');
  return n;
}

async function main(): Promise<void> {
  const program = new Command('jotta-emulator')
    .description('Loopback Jottacloud emulator (identity, api, upload and JFS hosts on one listener)')
    .requiredOption('--state <dir>', 'state directory (created if missing; survives restarts)')
    .option('--port <n>', 'TCP port on 127.0.0.1 (0 = pick a free one)', int, 0)
    .option('--tls', 'serve HTTPS with a certificate signed by a CA written to <state>/tls/ca.pem', false)
    .option('--faults <spec>', 'fault injection, e.g. 429=0.1,500=0.05,drop-upload=0.05,slow-ms=200')
    .option('--seed <n>', 'seed of the fault PRNG', int, 1)
    .option('--username <name>', 'account username (first start of a state dir only)', 'testuser')
    .option('--token-ttl <seconds>', 'expires_in of issued access tokens', int, 3600)
    .option('--quota <bytes>', 'account quota in bytes (-1 = unlimited)', int, -1)
    .option('--quirks <list>', `live-service quirks to reproduce, comma separated (${QUIRKS.join(', ')})`)
    .option('--log', 'log every request to stderr', false);
  program.parse(process.argv);
  const o = program.opts<{ state: string; port: number; tls: boolean; faults?: string; seed: number; username: string; tokenTtl: number; quota: number; quirks?: string; log: boolean }>();

  const emu = await startEmulator({
    stateDir: o.state,
    port: o.port,
    tls: o.tls,
    faults: o.faults,
    seed: o.seed,
    username: o.username,
    tokenTtl: o.tokenTtl,
    quota: o.quota,
    quirks: [...parseQuirks(o.quirks)],
    log: o.log ? (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`) : undefined,
  });
  process.stdout.write(`${JSON.stringify({ url: emu.url, loginToken: emu.loginToken, username: emu.username, caCert: emu.caCert })}\n`);

  let stopping = false;
  const stop = (code: number): void => {
    if (stopping) return;
    stopping = true;
    emu.close().finally(() => process.exit(code));
    setTimeout(() => process.exit(code), 3000).unref();
  };
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
  process.on('SIGHUP', () => stop(0));
  // Exit when the launcher dies (e.g. `npm run` killed without forwarding the signal).
  const parent = process.ppid;
  if (parent > 1) {
    setInterval(() => {
      if (process.ppid !== parent) stop(0);
    }, 1000).unref();
    // keep the event loop alive via the server; the interval must not hold it open alone
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`jotta-emulator: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
