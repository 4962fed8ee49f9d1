/** find, diff, dump, stats, repair index, tag: thin wrappers over src/maintenance. */
import type { Command } from 'commander';
import { diff, find, lookup, stats } from '../maintenance/inspect.js';
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
        const out: Record<string, unknown>[] = [];
        let last = '';
        await find(repo, snaps, patterns, !!o.ignoreCase, (m) => {
          if (opts.json) { out.push({ snapshot: m.snapshot.id, path: m.path, type: m.node.type, size: Number(m.node.size ?? 0n), mtime: m.node.mtime }); return; }
          if (m.snapshot.id !== last) { process.stdout.write(`Found matching entries in snapshot ${m.snapshot.id.slice(0, 8)} from ${m.snapshot.time}\n`); last = m.snapshot.id; }
          process.stdout.write(`${m.path}\n`);
        });
        if (opts.json) process.stdout.write(`${JSON.stringify(out)}\n`);
      });
    });

  program.command('diff').description('show differences between two snapshots')
    .argument('<snapshot1>').argument('<snapshot2>')
    .action(async (a: string, b: string) => {
      const opts = g();
      await withRepo(opts, false, async (repo) => {
        const s1 = await repo.findSnapshot(a);
        const s2 = await repo.findSnapshot(b);
        if (!opts.json) process.stdout.write(`comparing snapshot ${s1.id.slice(0, 8)} to ${s2.id.slice(0, 8)}:\n\n`);
        const st = await diff(repo, s1.tree, s2.tree, (mode, p) => {
          if (opts.json) process.stdout.write(`${JSON.stringify({ message_type: 'change', path: p, modifier: mode })}\n`);
          else process.stdout.write(`${mode}    ${p}\n`);
        });
        if (opts.json) process.stdout.write(`${JSON.stringify({ message_type: 'statistics', source_snapshot: s1.id, target_snapshot: s2.id, ...st })}\n`);
        else process.stdout.write(`\nFiles/dirs: ${st.added} new, ${st.removed} removed, ${st.modified} changed, ${st.metadata} metadata only\n`);
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
    .option('--mode <mode>', 'counting mode: restore-size (default) or raw-data', 'restore-size'))
    .action(async (ids: string[], o: { mode: string; host: string[]; tag: string[]; path: string[] }) => {
      const opts = g();
      if (o.mode !== 'restore-size' && o.mode !== 'raw-data') throw new UserError(`unknown mode "${o.mode}" (restore-size or raw-data)`);
      await withRepo(opts, false, async (repo) => {
        const r = await stats(repo, await pick(repo, ids, o), o.mode as 'restore-size');
        if (opts.json) { process.stdout.write(`${JSON.stringify(r)}\n`); return; }
        process.stdout.write(`Stats in ${o.mode} mode:\n     Snapshots processed:  ${r.snapshots_count}\n`);
        if (r.total_blob_count !== undefined) process.stdout.write(`        Total Blob Count:  ${r.total_blob_count}\n`);
        process.stdout.write(`        Total File Count:  ${r.total_file_count}\n              Total Size:  ${formatBytes(r.total_size)}\n`);
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
