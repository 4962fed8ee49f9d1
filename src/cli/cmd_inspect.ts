/** find, diff, dump, stats, repair index, tag: thin wrappers over src/maintenance. */
import type { Command } from 'commander';
import { diff, find, lookup, stats, STATS_MODES, type StatsMode } from '../maintenance/inspect.js';
import { encodeNode, type Node } from '../repo/tree.js';
import { goJsonString } from '../format/gojson.js';
import { goModeString } from '../format/gomode.js';
import { dumpFile, dumpTar } from '../maintenance/dump.js';
import { repairIndex } from '../maintenance/repair.js';
import { UserError } from '../repo/errors.js';
import type { SnapshotWithId } from '../repo/snapshot.js';
import { lockAndLoadIndex, lockRepo, openRepo, unlockRepo, type GlobalOpts } from './global.js';
import { formatBytes } from './progress.js';
import type { Repository } from '../repo/repository.js';
import type { Lock } from '../repo/lock.js';
import { setExitCode } from './exit.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

async function withRepo<T>(g: GlobalOpts, exclusive: boolean | null, fn: (r: Repository) => Promise<T>): Promise<T> {
  const repo = await openRepo(g);
  let lock: Lock | null = null;
  if (exclusive === null) await repo.loadIndex();
  else lock = await lockAndLoadIndex(repo, exclusive, g);
  try {
    return await fn(repo);
  } finally {
    await unlockRepo(lock);
  }
}

async function pick(repo: Repository, ids: string[], f: { host: string[]; tag: string[]; path: string[] }): Promise<SnapshotWithId[]> {
  let l = await repo.listSnapshots();
  if (ids.length) {
    const want = new Set<string>();
    for (const i of ids) want.add((await repo.findSnapshot(i)).id);
    l = l.filter((s) => want.has(s.id));
  }
  if (f.host.length) l = l.filter((s) => f.host.includes(s.hostname ?? ''));
  if (f.path.length) l = l.filter((s) => f.path.every((p) => s.paths.includes(p)));
  if (f.tag.length) l = l.filter((s) => f.tag.some((tl) => tl.split(',').every((t) => s.tags?.includes(t))));
  return l;
}

/** one `find --json` match as restic 0.14 marshals it (Go field order and omit rules) */
function findMatchJSON(path: string, n: Node): string {
  const rest = encodeNode({ ...n, name: Buffer.alloc(0), inode: undefined, extendedAttributes: undefined, genericAttributes: undefined, device: undefined, subtree: undefined, linktargetRaw: undefined, content: null })
    .replace(/^\{"name":"",/, '').replace(',"content":null', '');
  return `{"path":${goJsonString(path)},"permissions":"${goModeString(n.mode)}",${rest}`;
}

const filterFlags = (c: Command) => c
  .option('-H, --host <host>', 'only consider snapshots for this host', collect, [])
  .option('--tag <taglist>', 'only consider snapshots including tag[,tag,...]', collect, [])
  .option('--path <path>', 'only consider snapshots including this (absolute) path', collect, []);

export function register(program: Command, g: () => GlobalOpts): void {
  filterFlags(program.command('find').description('find a file, a directory or restic IDs')
    .argument('<pattern...>', 'glob patterns (matched against the base name, or the path when it contains "/")')
    .option('-i, --ignore-case', 'ignore case for pattern')
    .option('-s, --snapshot <id>', 'snapshot id to search in (can be given multiple times)', collect, []))
    .action(async (patterns: string[], o: { ignoreCase?: boolean; snapshot: string[]; host: string[]; tag: string[]; path: string[] }) => {
      const opts = g();
      await withRepo(opts, false, async (repo) => {
        const snaps = await pick(repo, o.snapshot, o);
        // restic 0.14's shape: one object per snapshot with hits, its matches (the node with `path`
        // and `permissions` first, without name, inode, xattrs, device, content, subtree) and the id
        const groups: string[] = [];
        let matches: string[] = [];
        let last: SnapshotWithId | null = null;
        const close = () => { if (last) groups.push(`{"matches":[${matches.join(',')}],"hits":${matches.length},"snapshot":"${last.id}"}`); };
        await find(repo, snaps, patterns, !!o.ignoreCase, (m) => {
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
        });
        if (opts.json) { close(); process.stdout.write(`[${groups.join(',')}]\n`); }
      });
    });

  program.command('diff').description('show differences between two snapshots')
    .argument('<snapshot1>').argument('<snapshot2>')
    .option('--metadata', 'print changes in metadata')
    .action(async (a: string, b: string, o: { metadata?: boolean }) => {
      const opts = g();
      await withRepo(opts, false, async (repo) => {
        const s1 = await repo.findSnapshot(a);
        const s2 = await repo.findSnapshot(b);
        if (!opts.json && !opts.quiet) process.stdout.write(`comparing snapshot ${s1.id.slice(0, 8)} to ${s2.id.slice(0, 8)}:\n\n`);
        const st = await diff(repo, s1.tree, s2.tree, { metadata: o.metadata, warn: (m) => process.stderr.write(`${m}\n`) }, (mode, p) => {
          if (opts.quiet) return;
          if (opts.json) process.stdout.write(`{"message_type":"change","path":${goJsonString(p)},"modifier":"${mode}"}\n`); // Go's encoder: <, >, & escaped
          else process.stdout.write(`${mode.padEnd(5)}${p}\n`);
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
    });

  program.command('dump').description('print a backed-up file to stdout (a directory as a tar archive)')
    .argument('<snapshotID>').argument('<file>')
    .option('-a, --archive <format>', 'set archive format as "tar"', 'tar')
    .action(async (ref: string, file: string, o: { archive: string }) => {
      const opts = g();
      if (o.archive !== 'tar') throw new UserError(`unknown archive format "${o.archive}" (only "tar" is supported)`);
      await withRepo(opts, false, async (repo) => {
        const s = await repo.findSnapshot(ref);
        const n = await lookup(repo, s.tree, file);
        if (!n) throw new UserError(`path "${file}" not found in snapshot ${s.id.slice(0, 8)}`);
        if (n.type === 'file') await dumpFile(repo, n, process.stdout);
        else if (n.type === 'dir') {
          // as restore: the rest of the archive is written, each damaged file named, exit 1
          const errors = await dumpTar(repo, n, process.stdout, (p, e) => process.stderr.write(`ignoring error for ${p}: ${e.message}\n`));
          if (errors) { process.stderr.write(`There were ${errors} errors\n`); setExitCode(1); }
        }
        else throw new UserError(`path "${file}" is a ${n.type}, not a file or directory`);
      });
    });

  filterFlags(program.command('stats').description('scan the repository and show basic statistics')
    .argument('[snapshotID...]')
    .option('--mode <mode>', 'counting mode: restore-size (default), files-by-contents, blobs-per-file or raw-data', 'restore-size'))
    .action(async (ids: string[], o: { mode: string; host: string[]; tag: string[]; path: string[] }) => {
      const opts = g();
      if (!STATS_MODES.includes(o.mode as StatsMode)) throw new UserError(`unknown counting mode: ${o.mode} (use ${STATS_MODES.join(', ')})`);
      await withRepo(opts, false, async (repo) => {
        if (!opts.json && !opts.quiet) process.stdout.write('scanning...\n');
        const r = await stats(repo, await pick(repo, ids, o), o.mode as StatsMode);
        if (opts.json) { process.stdout.write(`${JSON.stringify(r)}\n`); return; }
        process.stdout.write(`Stats in ${o.mode} mode:\nSnapshots processed:   ${r.snapshots_count}\n`);
        if (r.total_blob_count) process.stdout.write(`   Total Blob Count:   ${r.total_blob_count}\n`);
        if (r.total_file_count) process.stdout.write(`   Total File Count:   ${r.total_file_count}\n`);
        process.stdout.write(`         Total Size:   ${formatBytes(r.total_size).padEnd(5)}\n`);
      });
    });

  program.command('repair').description('repair the repository').command('index').description('build a new index from the pack headers')
    .action(async () => {
      const opts = g();
      const repo = await openRepo(opts);
      const lock = await lockRepo(repo, true, opts);
      try {
        const r = await repairIndex(repo, (s) => { if (!opts.quiet) process.stdout.write(`${s}\n`); });
        for (const b of r.badPacks) process.stderr.write(`pack ${b.id}: ${b.error}\n`);
        if (!opts.quiet) process.stdout.write(`indexed ${r.packs} packs in ${r.indexFilesNew} index files, replaced ${r.indexFilesOld}\n`);
        if (r.badPacks.length) setExitCode(1);
      } finally {
        await unlockRepo(lock);
      }
    });

  filterFlags(program.command('tag').description('modify tags on snapshots')
    .argument('[snapshotID...]')
    .option('--set <tags>', 'tags which will replace the existing tags (can be given multiple times)', collect, [])
    .option('--add <tags>', 'tags which will be added (can be given multiple times)', collect, [])
    .option('--remove <tags>', 'tags which will be removed (can be given multiple times)', collect, []))
    .action(async (ids: string[], o: { set: string[]; add: string[]; remove: string[]; host: string[]; tag: string[]; path: string[] }) => {
      const opts = g();
      if (!o.set.length && !o.add.length && !o.remove.length) throw new UserError('nothing to do: use --set, --add or --remove');
      if (o.set.length && (o.add.length || o.remove.length)) throw new UserError('--set and --add/--remove cannot be given at the same time');
      const split = (l: string[]) => l.flatMap((t) => t.split(',')).filter(Boolean);
      await withRepo(opts, true, async (repo) => {
        let n = 0;
        for (const s of await pick(repo, ids, o)) {
          let tags = s.tags ?? [];
          if (o.set.length) tags = split(o.set);
          tags = [...tags, ...split(o.add).filter((t) => !tags.includes(t))].filter((t) => !split(o.remove).includes(t));
          if (JSON.stringify(tags) === JSON.stringify(s.tags ?? [])) continue;
          const { id, ...rest } = s;
          const nid = await repo.saveSnapshot({ ...rest, tags, original: s.original ?? id });
          await repo.backend.remove({ type: 'snapshots', name: id });
          if (!opts.quiet) process.stdout.write(`old snapshot ID: ${id.slice(0, 8)} -> new snapshot ID: ${nid.slice(0, 8)}\n`);
          n++;
        }
        if (!opts.quiet) process.stdout.write(`modified tags on ${n} snapshots\n`);
      });
    });
}
