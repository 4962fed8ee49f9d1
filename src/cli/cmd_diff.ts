/** `jbackup diff`: ops diff, rendered as restic 0.14 prints it (text or --json). */
import type { Command } from 'commander';
import { diff } from '../ops/inspect.js';
import { goJsonString } from '../format/gojson.js';
import { lockOptions, openRepo, type GlobalOpts } from './global.js';
import { formatBytes } from './progress.js';

export function register(program: Command, g: () => GlobalOpts): void {
  program.command('diff').description('show differences between two snapshots')
    .argument('<snapshot1>').argument('<snapshot2>')
    .option('--metadata', 'print changes in metadata')
    .action(async (a: string, b: string, o: { metadata?: boolean }) => {
      const opts = g();
      const repo = await openRepo(opts);
      const st = await diff(repo, a, b, {
        ...lockOptions(opts),
        metadata: o.metadata,
        warn: (m) => process.stderr.write(`${m}\n`),
        snapshots: (s1, s2) => { if (!opts.json && !opts.quiet) process.stdout.write(`comparing snapshot ${s1.id.slice(0, 8)} to ${s2.id.slice(0, 8)}:\n\n`); },
        onChange: (mode, p) => {
          if (opts.quiet) return;
          if (opts.json) process.stdout.write(`{"message_type":"change","path":${goJsonString(p)},"modifier":"${mode}"}\n`); // Go's encoder: <, >, & escaped
          else process.stdout.write(`${mode.padEnd(5)}${p}\n`);
        },
      });
      // restic names the snapshots as they were given on the command line
      if (opts.json) { process.stdout.write(`${JSON.stringify({ message_type: 'statistics', source_snapshot: a, target_snapshot: b, ...st })}\n`); return; }
      const n = (x: number) => String(x).padStart(5);
      process.stdout.write(`\nFiles:       ${n(st.added.files)} new, ${n(st.removed.files)} removed, ${n(st.changed_files)} changed\n`
        + `Dirs:        ${n(st.added.dirs)} new, ${n(st.removed.dirs)} removed\n`
        + `Others:      ${n(st.added.others)} new, ${n(st.removed.others)} removed\n`
        + `Data Blobs:  ${n(st.added.data_blobs)} new, ${n(st.removed.data_blobs)} removed\n`
        + `Tree Blobs:  ${n(st.added.tree_blobs)} new, ${n(st.removed.tree_blobs)} removed\n`
        + `  Added:   ${formatBytes(st.added.bytes).padEnd(5)}\n  Removed: ${formatBytes(st.removed.bytes).padEnd(5)}\n`);
    });
}
