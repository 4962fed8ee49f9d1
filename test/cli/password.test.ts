/**
 * Where the password comes from, as restic 0.14 takes it: one line of standard input when it is not a
 * terminal, password files and commands trimmed of surrounding white space (both tools open each
 * other's repositories), an empty password refused, Ctrl-C at the prompt exits 130.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, interopDescribe, JBACKUP_BIN, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';
import { passwordFromLine, passwordFromText } from '../../src/util/pwtext.js';
import { readPassword } from '../../src/schedule/password.js';

let dir: string;
/** no password from the environment: the test decides the source */
const noEnvPw = { JBACKUP_PASSWORD: '', JBACKUP_PASSWORD_FILE: '', JBACKUP_PASSWORD_COMMAND: '', JBACKUP_KDF_PARAMS: '1024,8,1' };

beforeAll(async () => { dir = await tmpDir('cli-password'); });
afterAll(cleanupTmpDirs);

describe('password text rule (src/util/pwtext.ts)', () => {
  it('trims as Go\'s strings.TrimSpace, drops a BOM, decodes UTF-16 with a BOM', () => {
    expect(passwordFromText(Buffer.from(' pw \n')).toString()).toBe('pw');
    expect(passwordFromText(Buffer.from('\t p w\r\n\n')).toString()).toBe('p w');
    expect(passwordFromText(Buffer.from('\u00a0pw\u0085\u3000')).toString()).toBe('pw');
    // U+FEFF is not white space to Go (JavaScript's trim() would drop it)
    expect(passwordFromText(Buffer.from('pw\ufeff')).toString()).toBe('pw\ufeff');
    expect(passwordFromText(Buffer.from('\ufeffpw\n')).toString()).toBe('pw');
    expect(passwordFromText(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('pä\n', 'utf16le')])).toString()).toBe('pä');
    const be = Buffer.from('pä\n', 'utf16le'); be.swap16();
    expect(passwordFromText(Buffer.concat([Buffer.from([0xfe, 0xff]), be])).toString()).toBe('pä');
    expect(passwordFromText(Buffer.from(' \n')).length).toBe(0);
  });
  it('standard input: the first line, a CR before its newline dropped, not trimmed', () => {
    expect(passwordFromLine(Buffer.from(' pw \r\nrest')).toString()).toBe(' pw ');
    expect(passwordFromLine(Buffer.from('pw')).toString()).toBe('pw');
  });
  it('a profile\'s password file follows the same rule', async () => {
    const f = path.join(dir, 'profile-pw');
    await fsp.writeFile(f, '  secret \n', { mode: 0o600 });
    expect((await readPassword({ kind: 'file', path: f })).toString()).toBe('secret');
    expect((await readPassword({ kind: 'command', command: 'printf " secret\\n\\n"' })).toString()).toBe('secret');
  });
});

describe('password sources (CLI)', () => {
  it('init and open with the password piped to standard input (read once, also for init)', async () => {
    const repo = path.join(dir, 'stdin-repo');
    const init = await runJbackup(['-r', repo, 'init'], { env: noEnvPw, input: 'pw-stdin\n' });
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    expect((await runJbackup(['-r', repo, 'snapshots'], { env: noEnvPw, input: 'pw-stdin\n' })).code).toBe(0);
    const wrong = await runJbackup(['-r', repo, 'snapshots'], { env: noEnvPw, input: 'other\n' });
    expect(wrong.code).toBe(12);
  });

  it('an empty password is refused: empty standard input, an empty line, a blank password file, an empty JBACKUP_PASSWORD', async () => {
    const repo = path.join(dir, 'empty-repo');
    const blank = path.join(dir, 'blank');
    await fsp.writeFile(blank, ' \n');
    for (const [args, input] of [[[], ''], [[], '\n'], [['--password-file', blank], undefined]] as const) {
      const r = await runJbackup(['-r', repo, ...args, 'init'], { env: noEnvPw, input });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^Fatal: an empty password is not a password/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    const r = await runJbackup(['-r', repo, 'init'], { env: { ...noEnvPw, JBACKUP_PASSWORD: '' }, input: '' });
    expect(r.code).toBe(1);
    await expect(fsp.stat(repo)).rejects.toThrow();
  });

  it('--password-file and --password-command together are refused', async () => {
    const f = path.join(dir, 'pwf');
    await fsp.writeFile(f, 'pw\n');
    const r = await runJbackup(['-r', path.join(dir, 'x'), '--password-file', f, '--password-command', 'echo pw', 'snapshots'], { env: noEnvPw });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/mutually exclusive/);
  });

  it('a missing password file is named', async () => {
    const f = path.join(dir, 'no-such-pw');
    const r = await runJbackup(['-r', path.join(dir, 'x'), '--password-file', f, 'snapshots'], { env: noEnvPw });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`Fatal: the password file ${f} does not exist\n`);
  });

  it('Ctrl-C at the password prompt exits 130', () => {
    // a pty (python's pty module): the prompt reads the terminal in raw mode, Ctrl-C arrives as \x03
    const py = `
import os, pty, select, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
buf = b''
while b'enter password' not in buf:
    r, _, _ = select.select([fd], [], [], 120)
    if not r: sys.exit(90)
    try: d = os.read(fd, 1024)
    except OSError: sys.exit(91)
    if not d: sys.exit(92)
    buf += d
os.write(fd, b'\\x03')
while True:
    try: d = os.read(fd, 1024)
    except OSError: break
    if not d: break
_, st = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(st))
`;
    const r = spawnSync('python3', ['-c', py, process.execPath, JBACKUP_BIN, '-r', path.join(dir, 'tty-repo'), 'init'],
      { env: { ...process.env, ...noEnvPw }, encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('130');
  });
});

interopDescribe('restic', 'password interop with restic 0.14', () => {
  it('a password file with surrounding spaces: each tool opens the other\'s repository', async () => {
    const f = path.join(dir, 'spaced');
    await fsp.writeFile(f, '  pw with spaces \n');
    const jrepo = path.join(dir, 'j-spaced');
    const rrepo = path.join(dir, 'r-spaced');
    expect((await runJbackup(['-r', jrepo, '--password-file', f, 'init'], { env: noEnvPw })).code).toBe(0);
    expect((await runRestic(['--password-file', f, 'cat', 'config'], { repo: jrepo, password: '' })).code).toBe(0);
    // the trimmed text is the password
    expect((await runRestic(['cat', 'config'], { repo: jrepo, password: 'pw with spaces' })).code).toBe(0);
    expect((await runRestic(['--password-file', f, 'init'], { repo: rrepo, password: '' })).code).toBe(0);
    expect((await runJbackup(['-r', rrepo, '--password-file', f, 'cat', 'config'], { env: noEnvPw })).code).toBe(0);
    expect((await runJbackup(['-r', rrepo, 'cat', 'config'], { env: { ...noEnvPw, JBACKUP_PASSWORD: 'pw with spaces' } })).code).toBe(0);
  });

  it('key add --new-password-file trims as restic\'s does', async () => {
    const jrepo = path.join(dir, 'j-spaced');
    const nf = path.join(dir, 'new-spaced');
    await fsp.writeFile(nf, ' new pw\t\n');
    const r = await runJbackup(['-r', jrepo, 'key', 'add', '--new-password-file', nf], { env: { ...noEnvPw, JBACKUP_PASSWORD: 'pw with spaces' } });
    expect(r.code).toBe(0);
    expect((await runRestic(['cat', 'config'], { repo: jrepo, password: 'new pw' })).code).toBe(0);
  });

  it('password on standard input: same line, same rule, same refusal of an empty one', async () => {
    const rrepo = path.join(dir, 'r-stdin');
    expect((await runRestic(['init'], { repo: rrepo, password: '', input: ' pw \n' })).code).toBe(0);
    expect((await runJbackup(['-r', rrepo, 'cat', 'config'], { env: noEnvPw, input: ' pw \n' })).code).toBe(0);
    const jrepo = path.join(dir, 'j-stdin');
    expect((await runJbackup(['-r', jrepo, 'init'], { env: noEnvPw, input: ' pw \n' })).code).toBe(0);
    expect((await runRestic(['cat', 'config'], { repo: jrepo, password: '', input: ' pw \n' })).code).toBe(0);
    const re = await runRestic(['init'], { repo: path.join(dir, 'r-empty'), password: '', input: '\n' });
    const je = await runJbackup(['-r', path.join(dir, 'j-empty'), 'init'], { env: noEnvPw, input: '\n' });
    expect(re.code).toBe(1);
    expect(je.code).toBe(re.code);
    expect(re.stderr).toMatch(/empty password is not a password/);
    expect(je.stderr).toMatch(/empty password is not a password/);
  });
});
