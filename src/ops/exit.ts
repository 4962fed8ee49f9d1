/**
 * The one error → exit-code mapping, restic's codes, used by the CLI (src/cli/main.ts) and by
 * profile runs (src/schedule/run.ts).
 */
import { LockError, RepoNotFoundError, WrongPasswordError } from '../repo/errors.js';

/** restic's exit codes; pipe: its status when it dies of SIGPIPE (128 + 13), which node ignores */
export const EXIT = { ok: 0, fatal: 1, partial: 3, noRepo: 10, lock: 11, password: 12, interrupted: 130, pipe: 141 } as const;

/** an interrupted operation (Ctrl-C at a password prompt): restic's exit code 130 */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
}

/** an error that carries its own exit code */
export class ExitCodeError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.fatal) { super(message); }
}

export function exitCodeOf(e: unknown): number {
  if (e instanceof ExitCodeError) return e.exitCode;
  if (e instanceof InterruptedError) return EXIT.interrupted;
  if (e instanceof RepoNotFoundError) return EXIT.noRepo;
  if (e instanceof WrongPasswordError) return EXIT.password;
  if (e instanceof LockError) return EXIT.lock;
  // everything else is fatal, an append-only server's refused deletion (DeleteRefusedError) included:
  // restic exits 1 there too
  return EXIT.fatal;
}
