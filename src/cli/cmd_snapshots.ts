import type { Command } from 'commander';
import { lockRepo, openRepo, unlockRepo, type GlobalOpts } from './global.js';
import { validInt } from './flags.js';
import type { SnapshotWithId } from '../repo/snapshot.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function snapshotJSON(s: SnapshotWithId): Record<string, unknown> {
  const { id, ...rest } = s;
  return { ...rest, id, short_id: id.slice(0, 8) };
}

export function register(program: Command, g: () => GlobalOpts): void {
  program.command('snapshots').description('list all snapshots')
    .argument('[snapshotID...]', 'only these snapshots')
    .option('-H, --host <host>', 'only consider snapshots for this host', collect, [])
    .option('--path <path>', 'only consider snapshots including this (absolute) path', collect, [])
    .option('--tag <taglist>', 'only consider snapshots including tag[,tag,...]', collect, [])
    .option('--latest <n>', 'only show the last n snapshots for each host and path', validInt('--latest', 1))
    .action(async (ids: string[], o: { host: string[]; path: string[]; tag: string[]; latest?: string }) => {
      const opts = g();
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
        if (o.latest) {
          const n = Number(o.latest);
          const groups = new Map<string, SnapshotWithId[]>();
          for (const s of list) {
            const k = `${s.hostname}\0${[...s.paths].sort().join('\0')}`;
            groups.set(k, [...(groups.get(k) ?? []), s]);
          }
          const keep = new Set([...groups.values()].flatMap((l) => l.slice(-n)));
          list = list.filter((s) => keep.has(s));
        }
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(list.map(snapshotJSON))}\n`);
          return;
        }
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
      } finally {
        await unlockRepo(lock);
      }
    });
}
