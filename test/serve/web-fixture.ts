/**
 * A repository for the web tests: two snapshots of a small tree with what the pages must handle:
 * text (UTF-8 and Latin-1), binary, an image, active content (HTML, SVG with script), a name that is
 * HTML, a non-UTF-8 name, symlinks (to a file, to a folder), a file of several blobs, an empty file.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { prngBytes } from '../helpers/fstree.js';
import { runJbackup, tmpDir } from '../helpers/tools.js';

export const PW = 'web-pw';
export const HOSTILE = '<img src=x onerror=alert(1)>"\'&<script>alert(2)<\\script>.txt';
/** a file name that is not UTF-8: "bad\xff.txt" (served as "bad％FF.txt") */
export const NON_UTF8 = Buffer.from([0x62, 0x61, 0x64, 0xff, 0x2e, 0x74, 0x78, 0x74]);
/** a 1×1 PNG (red) */
export const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082', 'hex');

export interface Fixture { dir: string; repo: string; src: string; first: string; second: string; env: Record<string, string> }

export async function makeFixture(): Promise<Fixture> {
  const dir = await tmpDir('web');
  const repo = path.join(dir, 'repo');
  const src = path.join(dir, 'src');
  const env = { JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1' };
  const w = async (rel: string, data: string | Buffer) => {
    await fsp.mkdir(path.dirname(path.join(src, rel)), { recursive: true });
    await fsp.writeFile(path.join(src, rel), data);
  };
  await w('photos/2024/red.png', PNG);
  await w('photos/2024/big.bin', prngBytes('big', 3_200_000));
  await w('photos/2024/empty.dat', '');
  await w('photos/10 later.txt', 'sorted after 9\n');
  await w('photos/9 first.txt', 'sorted before 10\n');
  await w('notes/readme.txt', 'naïve café <b>not bold</b> & friends\n'.repeat(3));
  await w('notes/latin1.txt', Buffer.from('caf\xe9 cr\xe8me br\xfbl\xe9e\n', 'latin1'));
  await w('notes/page.html', '<html><body><script>document.title="pwned"</script>hello</body></html>\n');
  await w('notes/evil.svg', '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(3)</script><rect width="10" height="10" fill="blue"/></svg>\n');
  await w(`notes/${HOSTILE}`, 'hostile name\n');
  await fsp.writeFile(Buffer.concat([Buffer.from(`${src}/notes/`), NON_UTF8]), 'not utf-8 name\n');
  await fsp.symlink('readme.txt', path.join(src, 'notes/link-to-readme'));
  await fsp.symlink('../photos', path.join(src, 'notes/link-to-photos'));
  await w('gone.txt', 'removed in the second snapshot\n');
  const jb = async (args: string[]) => {
    const r = await runJbackup(args, { env, cwd: src });
    if (r.code !== 0) throw new Error(`jbackup ${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  await jb(['init']);
  const first = JSON.parse((await jb(['--json', 'snapshot', '--host', 'laptop', '--tag', 'daily', '.'])).stdout.trim().split('\n').pop()!).snapshot_id as string;
  await fsp.rm(path.join(src, 'gone.txt'));
  await w('notes/readme.txt', 'revised\n');
  await w('new.txt', 'added in the second snapshot\n');
  const second = JSON.parse((await jb(['--json', 'snapshot', '--host', 'desktop', '--tag', 'weekly', '.'])).stdout.trim().split('\n').pop()!).snapshot_id as string;
  return { dir, repo, src, first, second, env };
}
