import type { Command } from 'commander';
import { lockRepo, openRepo, unlockRepo, type GlobalOpts } from './global.js';
import { validInt } from './flags.js';
import type { SnapshotWithId } from '../repo/snapshot.js';
import { groupSnapshots, parseGroupBy } from '../maintenance/forget.js';
import { UserError } from '../repo/errors.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function snapshotJSON(s: SnapshotWithId): Record<string, unknown> {
  const { id, ...rest } = s;
  return { ...rest, id, short_id: id.slice(0, 8) };
}

/** restic's FilterLastestSnapshots: the newest n of each host and path set, in the list's order */
function latestPerHostAndPaths(list: SnapshotWithId[], n: number): SnapshotWithId[] {
  const groups = new Map<string, SnapshotWithId[]>();
  for (const s of list) {
    const k = `${s.hostname}\0${[...s.paths].sort().join('\0')}`;
    groups.set(k, [...(groups.get(k) ?? []), s]);
  }
  const keep = new Set([...groups.values()].flatMap((l) => l.slice(-n)));
  return list.filter((s) => keep.has(s));
}

function printTable(list: SnapshotWithId[]): void {
  const rows = list.map((s) => [s.id.slice(0, 8), s.time.replace('T', ' ').replace(/\.\d+/, '').replace(/(Z|[+-]\d\d:\d\d)$/, ''), s.hostname ?? '', (s.tags ?? []).join(','), s.paths.join('\n')]);
  const head = ['ID', 'Time', 'Host', 'Tags', 'Paths'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').split('\n').reduce((m, l) => Math.max(m, l.length), 0))));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ');
  const out: string[] = [line(head), '-'.repeat(w.reduce((a, b) => a + b + 2, 0))];
  for (const r of rows) {
    const [first, ...more] = r[4]!.split('\n');
    out.push(line([...r.slice(0, 4), first ?? '']));
    for (const m of more) out.push(line(['', '', '', '', m]));
  }
  out.push('-'.repeat(w.reduce((a, b) => a + b + 2, 0)), `${list.length} snapshots`);
  process.stdout.write(`${out.join('\n')}\n`);
}

export function register(program: Command, g: () => GlobalOpts): void {
  program.command('snapshots').description('list all snapshots')
    .argument('[snapshotID...]', 'only these snapshots')
    .option('-H, --host <host>', 'only consider snapshots for this host', collect, [])
    .option('--path <path>', 'only consider snapshots including this (absolute) path', collect, [])
    .option('--tag <taglist>', 'only consider snapshots including tag[,tag,...]', collect, [])
    .option('--latest <n>', 'only show the last n snapshots for each host and path', validInt('--latest', 1))
    .option('-g, --group-by <group>', 'group snapshots by host, paths and/or tags, separated by comma', '')
    .action(async (ids: string[], o: { host: string[]; path: string[]; tag: string[]; latest?: string; groupBy: string }) => {
      const opts = g();
      let groupBy;
      try { groupBy = parseGroupBy(o.groupBy); } catch (e) { throw new UserError((e as Error).message); }
      const grouped = groupBy.host || groupBy.paths || groupBy.tags;
      const repo = await openRepo(opts);
      const lock = await lockRepo(repo, false, opts);
      try {
        let list = await repo.listSnapshots();
        if (ids.length) {
          const want = await Promise.all(ids.map((i) => (i === 'latest' ? repo.findSnapshot(i).then((s) => s.id) : repo.resolveId('snapshots', i))));
          list = list.filter((s) => want.includes(s.id));
        }
        if (o.host.length) list = list.filter((s) => o.host.includes(s.hostname ?? ''));
        if (o.path.length) list = list.filter((s) => o.path.every((p) => s.paths.includes(p)));
        if (o.tag.length) list = list.filter((s) => o.tag.some((tl) => tl.split(',').every((t) => s.tags?.includes(t))));
        // restic 0.14: --latest applies within each group; with --group-by, JSON lists the groups
        const groups = grouped ? groupSnapshots(list, groupBy) : [{ key: {}, snapshots: list }];
        const shown = groups.map((gr) => ({ key: gr.key, snapshots: o.latest ? latestPerHostAndPaths(gr.snapshots, Number(o.latest)) : gr.snapshots }));
        if (opts.json) {
          // restic's grouping (also "no grouping") sorts each snapshot's paths in place, and its tags when grouping by tags
          const byBytes = (l: string[]) => [...l].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
          const json = (sn: SnapshotWithId) => snapshotJSON({ ...sn, paths: byBytes(sn.paths), ...(groupBy.tags && sn.tags ? { tags: byBytes(sn.tags) } : {}) });
          if (!grouped) process.stdout.write(`${JSON.stringify(shown[0]!.snapshots.map(json))}\n`);
          else process.stdout.write(`${JSON.stringify(shown.map((gr) => ({ group_key: { hostname: gr.key.hostname ?? '', paths: gr.key.paths ?? null, tags: gr.key.tags ?? null }, snapshots: gr.snapshots.map(json) })))}\n`);
          return;
        }
        for (const gr of shown) {
          if (grouped) {
            const info: string[] = [];
            if (gr.key.hostname) info.push(`host [${gr.key.hostname}]`);
            if (gr.key.tags) info.push(`tags [${gr.key.tags.join(', ')}]`);
            if (gr.key.paths) info.push(`paths [${gr.key.paths.join(', ')}]`);
            if (info.length) process.stdout.write(`snapshots for (${info.join(', ')}):\n`);
          }
          printTable(gr.snapshots);
        }
      } finally {
        await unlockRepo(lock);
      }
    });
}
