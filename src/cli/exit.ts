/** the exit code a command sets without failing (3: partial snapshot); the codes are src/ops/exit.ts's */
export { EXIT } from '../ops/exit.js';
let code = 0;
export function setExitCode(c: number): void { code = c; }
export function exitCode(): number { return code; }
