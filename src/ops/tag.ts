/** tag as an operation: rewrite the chosen snapshots with changed tags (each new snapshot names its original). */
import type { Repository } from '../repo/repository.js';
import { withIndex } from './inspect.js';
import type { LockOptions } from './lock.js';
import { selectSnapshots, type SnapshotSelection } from './select.js';

export interface TagOptions extends LockOptions, SnapshotSelection {
  /** replace the tags (comma-separated lists allowed in each entry) */
  set?: string[];
  add?: string[];
  remove?: string[];
  /** each snapshot rewritten: old id, new id */
  changed?: (oldId: string, newId: string) => void;
}

/** returns how many snapshots were modified */
export async function tag(repo: Repository, o: TagOptions): Promise<number> {
  const split = (l: string[] | undefined) => (l ?? []).flatMap((t) => t.split(',')).filter(Boolean);
  const set = split(o.set);
  const add = split(o.add);
  const remove = split(o.remove);
  return withIndex(repo, true, o, async () => {
    let n = 0;
    for (const s of await selectSnapshots(repo, o)) {
      let tags = s.tags ?? [];
      if (set.length) tags = set;
      tags = [...tags, ...add.filter((t) => !tags.includes(t))].filter((t) => !remove.includes(t));
      if (JSON.stringify(tags) === JSON.stringify(s.tags ?? [])) continue;
      const { id, ...rest } = s;
      const nid = await repo.saveSnapshot({ ...rest, tags, original: s.original ?? id });
      await repo.backend.remove({ type: 'snapshots', name: id });
      o.changed?.(id, nid);
      n++;
    }
    return n;
  });
}
