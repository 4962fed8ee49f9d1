/**
 * V8 flags jbackup runs with. `--max-semi-space-size=1` caps the young generation at 3 MiB: by
 * default V8 grows it to 48 MiB when allocation is busy, and a backup or restore allocates fast
 * (tree decoding, pack bookkeeping) while keeping little. Measured on the bench dataset: restore peak RSS −30 MiB, no
 * change in time. bin/jbackup (a sh/JavaScript polyglot) and the scheduled units (cliCommand)
 * both start node with these; test/launcher.test.ts keeps the launcher in step with this list.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];
