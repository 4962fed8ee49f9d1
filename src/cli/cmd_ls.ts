import { goModeString } from '../format/gomode.js';
import type { Command } from 'commander';
import { decodeTree, type Node } from '../repo/tree.js';
import { UserError } from '../repo/errors.js';
import { openRepo, type GlobalOpts } from './global.js';
import { snapshotJSON } from './cmd_snapshots.js';

function permString(n: Node): string {
  return goModeString(n.mode); // restic prints Go's FileMode.String()
}

export function register(program: Command, g: () => GlobalOpts): void {
  program.command('ls').description('list files in a snapshot')
    .argument('<snapshotID>', 'snapshot id or "latest"')
    .argument('[dir...]', 'only list these directories (and below)')
    .option('-l, --long', 'use a long listing format showing size and mode')
    .option('--recursive', 'include files in subfolders of the listed directories')
    .action(async (ref: string, dirs: string[], o: { long?: boolean; recursive?: boolean }) => {
      const opts = g();
      const repo = await openRepo(opts);
      await repo.loadIndex();
      const snap = await repo.findSnapshot(ref);
      const filters = dirs.map((d) => d.replace(/\/+$/, '') || '/');
      const out: string[] = [];
      const emit = (s: string) => { out.push(s); if (out.length > 1000) { process.stdout.write(out.join('')); out.length = 0; } };
      if (opts.json) emit(`${JSON.stringify({ ...snapshotJSON(snap), struct_type: 'snapshot' })}\n`);
      else emit(`snapshot ${snap.id.slice(0, 8)} of ${JSON.stringify(snap.paths)} at ${snap.time}:\n`);
      const want = (p: string, isDir: boolean): { print: boolean; descend: boolean } => {
        if (filters.length === 0) return { print: true, descend: true };
        let print = false;
        let descend = false;
        for (const f of filters) {
          if (f === '/' ) { print = p.split('/').length === 2 || !!o.recursive; descend = true; continue; }
          if (p === f) { print = true; descend = descend || isDir; }
          else if (p.startsWith(`${f}/`)) { const deeper = p.slice(f.length + 1).includes('/'); print = print || !deeper || !!o.recursive; descend = descend || !!o.recursive; }
          else if (f.startsWith(`${p}/`)) descend = true;
        }
        return { print, descend };
      };
      const walk = async (treeId: string, prefix: string) => {
        for (const n of decodeTree(await repo.loadBlob('tree', treeId), treeId)) {
          const p = `${prefix}/${n.name.toString()}`;
          const w = want(p, n.type === 'dir');
          if (w.print) {
            if (opts.json) {
              const j: Record<string, unknown> = { name: n.name.toString(), type: n.type, path: p, uid: n.uid, gid: n.gid };
              if (n.type === 'file') j['size'] = Number(n.size ?? 0n);
              j['mode'] = n.mode; j['permissions'] = permString(n); j['mtime'] = n.mtime; j['atime'] = n.atime; j['ctime'] = n.ctime; j['struct_type'] = 'node';
              emit(`${JSON.stringify(j)}\n`);
            } else if (o.long) {
              const size = n.type === 'file' ? String(n.size ?? 0n) : '0';
              emit(`${permString(n)} ${String(n.uid).padStart(5)} ${String(n.gid).padStart(5)} ${size.padStart(12)} ${n.mtime} ${p}${n.type === 'symlink' ? ` -> ${n.linktarget?.toString() ?? ''}` : ''}\n`);
            } else emit(`${p}\n`);
          }
          if (n.type === 'dir' && n.subtree && w.descend) await walk(n.subtree, p);
        }
      };
      if (!snap.tree) throw new UserError('snapshot has no tree');
      await walk(snap.tree, '');
      process.stdout.write(out.join(''));
    });
}
