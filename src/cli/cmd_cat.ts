import type { Command } from 'commander';
import { UserError } from '../repo/errors.js';
import { masterKeyToJSON } from '../crypto/crypto.js';
import { encodeConfig } from '../repo/config.js';
import { lockRepo, openRepo, unlockRepo, type GlobalOpts } from './global.js';

const TYPES = ['config', 'masterkey', 'index', 'snapshot', 'key', 'lock', 'tree', 'blob', 'pack'];

export function register(program: Command, g: () => GlobalOpts): void {
  program.command('cat').description('print internal objects to stdout')
    .argument('<type>', TYPES.join('|'))
    .argument('[id]', 'object id')
    .action(async (type: string, id: string | undefined) => {
      const opts = g();
      if (!TYPES.includes(type)) throw new UserError(`invalid type "${type}" (one of ${TYPES.join(', ')})`);
      if (!id && type !== 'config' && type !== 'masterkey') throw new UserError(`type "${type}" needs an ID`);
      const repo = await openRepo(opts);
      const lock = await lockRepo(repo, false, opts);
      const pretty = (b: Buffer) => `${JSON.stringify(JSON.parse(b.toString('utf8')), null, '  ')}\n`;
      try {
        switch (type) {
          case 'config': process.stdout.write(pretty(encodeConfig(repo.config))); break;
          case 'masterkey': process.stdout.write(pretty(Buffer.from(masterKeyToJSON(repo.key)))); break;
          case 'index': process.stdout.write(pretty(await repo.loadUnpacked('index', await repo.resolveId('index', id!)))); break;
          case 'snapshot': {
            const sid = id === 'latest' ? (await repo.findSnapshot('latest')).id : await repo.resolveId('snapshots', id!);
            process.stdout.write(pretty(await repo.loadUnpacked('snapshots', sid)));
            break;
          }
          case 'lock': process.stdout.write(pretty(await repo.loadUnpacked('locks', await repo.resolveId('locks', id!)))); break;
          case 'key': process.stdout.write(pretty(await repo.backend.load({ type: 'keys', name: await repo.resolveId('keys', id!) }))); break;
          case 'pack': process.stdout.write(await repo.backend.load({ type: 'data', name: await repo.resolveId('data', id!) })); break;
          case 'tree':
          case 'blob': {
            await repo.loadIndex();
            const types = type === 'tree' ? (['tree'] as const) : (['data', 'tree'] as const);
            const t = types.find((x) => repo.index.has(x, id!));
            if (!t) throw new UserError(`blob ${id} not found`);
            const b = await repo.loadBlob(t, id!);
            process.stdout.write(type === 'tree' ? pretty(b) : b);
            break;
          }
          default: break;
        }
      } finally {
        await unlockRepo(lock);
      }
    });
}
