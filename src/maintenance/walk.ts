/** Walk every tree reachable from snapshots, once per tree id. */
import type { Repository } from '../repo/repository.js';
import { decodeTree, type Node } from '../repo/tree.js';

export interface WalkVisitor {
  /** called once per distinct tree; return false to skip its children */
  tree?(id: string, nodes: Node[]): void;
  treeError?(id: string, err: Error): void;
  node?(treeId: string, n: Node): void;
}

export async function walkTrees(repo: Repository, roots: string[], v: WalkVisitor, concurrency = 8): Promise<Set<string>> {
  const seen = new Set<string>();
  const queue = [...roots];
  let active = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      if (queue.length === 0 && active === 0) { resolve(); return; }
      while (active < concurrency && queue.length) {
        const id = queue.pop()!;
        if (seen.has(id)) continue;
        seen.add(id);
        active++;
        // a tree that does not decode is reported like one that cannot be loaded
        repo.loadBlob('tree', id).then((b) => decodeTree(b, id)).then((nodes) => {
          v.tree?.(id, nodes);
          for (const n of nodes) {
            v.node?.(id, n);
            if (n.type === 'dir' && n.subtree && !seen.has(n.subtree)) queue.push(n.subtree);
          }
        }, (e: Error) => {
          // (the visitor names the tree itself)
          const own = `tree ${id}: `;
          v.treeError?.(id, e.message.startsWith(own) ? new Error(e.message.slice(own.length)) : e);
        }).then(() => { active--; pump(); }, reject);
      }
      if (queue.length === 0 && active === 0) resolve();
    };
    pump();
  });
  return seen;
}
