/** `jbackup find`: ops find, rendered as restic 0.14 prints it (text or --json). */
import type { Command } from 'commander';
import { find } from '../ops/inspect.js';
import { encodeNode, type Node } from '../repo/tree.js';
import { goJsonString } from '../format/gojson.js';
import type { SnapshotWithId } from '../repo/snapshot.js';
import { goModeString } from '../format/gomode.js';
import { lockOptions, openRepo, type GlobalOpts } from './global.js';
import { collect, filterFlags, selection, type FilterFlags } from './filters.js';

/** one `find --json` match as restic 0.14 marshals it (Go field order and omit rules) */
function findMatchJSON(path: string, n: Node): string {
  const rest = encodeNode({ ...n, name: Buffer.alloc(0), inode: undefined, extendedAttributes: undefined, genericAttributes: undefined, device: undefined, subtree: undefined, linktargetRaw: undefined, content: null })
    .replace(/^\{"name":"",/, '').replace(',"content":null', '');
  return `{"path":${goJsonString(path)},"permissions":"${goModeString(n.mode)}",${rest}`;
}

export function register(program: Command, g: () => GlobalOpts): void {
  filterFlags(program.command('find').description('find a file, a directory or restic IDs')
    .argument('<pattern...>', 'glob patterns (matched against the base name, or the path when it contains "/")')
    .option('-i, --ignore-case', 'ignore case for pattern')
    .option('-s, --snapshot <id>', 'snapshot id to search in (can be given multiple times)', collect, []))
    .action(async (patterns: string[], o: { ignoreCase?: boolean; snapshot: string[] } & FilterFlags) => {
      const opts = g();
      const repo = await openRepo(opts);
      // restic 0.14's shape: one object per snapshot with hits, its matches (the node with `path`
      // and `permissions` first, without name, inode, xattrs, device, content, subtree) and the id
      const groups: string[] = [];
      let matches: string[] = [];
      let last: SnapshotWithId | null = null;
      const close = () => { if (last) groups.push(`{"matches":[${matches.join(',')}],"hits":${matches.length},"snapshot":"${last.id}"}`); };
      await find(repo, {
        ...selection(o.snapshot, o), ...lockOptions(opts), patterns, ignoreCase: o.ignoreCase,
        onMatch: (m) => {
          if (opts.json) {
            if (m.snapshot !== last) { close(); last = m.snapshot; matches = []; }
            matches.push(findMatchJSON(m.path, m.node));
            return;
          }
          if (m.snapshot !== last) {
            if (last && !opts.quiet) process.stdout.write('\n');
            last = m.snapshot;
            if (!opts.quiet) process.stdout.write(`Found matching entries in snapshot ${m.snapshot.id.slice(0, 8)} from ${m.snapshot.time}\n`);
          }
          process.stdout.write(`${m.path}\n`);
        },
      });
      if (opts.json) { close(); process.stdout.write(`[${groups.join(',')}]\n`); }
    });
}
