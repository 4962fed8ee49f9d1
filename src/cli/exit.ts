/** restic's exit codes; pipe: its status when it dies of SIGPIPE (128 + 13), which node ignores */
export const EXIT = { ok: 0, fatal: 1, partial: 3, noRepo: 10, lock: 11, password: 12, interrupted: 130, pipe: 141 } as const;
let code = 0;
export function setExitCode(c: number): void { code = c; }
export function exitCode(): number { return code; }
