/** Parsing and redacting rest: and rclone: locations; rclone's argument words. */
import { expect, it } from 'vitest';
import { openBackend, redactLocation } from '../../src/backend/location.js';
import { parseRestLocation } from '../../src/backend/rest/http.js';
import { RCLONE_DEFAULT_ARGS, RcloneTransport, redactRcloneRemote, splitShellWords } from '../../src/backend/rest/rclone.js';

it('rest: URLs: credentials taken out and percent-decoded, a trailing slash added, the password redacted', () => {
  const l = parseRestLocation('rest:https://me:p%40ss%3Aw@nas.local:8000/backups/laptop');
  expect(l.username).toBe('me');
  expect(l.password).toBe('p@ss:w');
  expect(l.url.href).toBe('https://nas.local:8000/backups/laptop/');
  expect(l.redacted).toBe('rest:https://me:***@nas.local:8000/backups/laptop/');
  expect(parseRestLocation('rest:http://127.0.0.1:8000/').redacted).toBe('rest:http://127.0.0.1:8000/');
  expect(parseRestLocation('rest:http://user@h/').redacted).toBe('rest:http://user@h/');
  expect(redactLocation('rest:http://a:secret@h:1/r/')).toBe('rest:http://a:***@h:1/r/');
  expect(redactLocation('/srv/repo')).toBe('/srv/repo');
  expect(openBackend('rest:http://a:secret@h:1/r').location).toBe('rest:http://a:***@h:1/r/');
});

it('bad rest: URLs are one line that does not show the password', () => {
  expect(() => openBackend('rest:ftp://a:secret@h/')).toThrow(/^invalid rest: location "rest:ftp:\/\/a:\*\*\*@h\/": the URL must start with http:\/\/ or https:\/\/$/);
  expect(() => openBackend('rest:not a url')).toThrow(/expected rest:http\(s\):\/\/\[user:pass@\]host:port\/path\//);
  expect(() => openBackend('rest:http://h/r/?x=1')).toThrow(/query/);
});

it('rclone: remotes keep their text, secret connection-string parameters are redacted', () => {
  expect(redactLocation('rclone:b2:bucket/laptop')).toBe('rclone:b2:bucket/laptop');
  expect(redactRcloneRemote(':s3,provider=Minio,access_key_id=AKIA,secret_access_key=shh:bucket/x')).toBe(':s3,provider=Minio,access_key_id=***,secret_access_key=***:bucket/x');
  expect(openBackend('rclone::sftp,host=h,pass=topsecret:/srv').location).toBe('rclone::sftp,host=h,pass=***:/srv');
});

it('--rclone-program and --rclone-args are split as shell words, as restic splits them', () => {
  expect(splitShellWords(RCLONE_DEFAULT_ARGS)).toEqual(['serve', 'restic', '--stdio', '--b2-hard-delete']);
  expect(splitShellWords(`  /opt/my rclone/rclone  "--config=/a b/c.conf" 'x y' a\\ b ""  `)).toEqual(['/opt/my', 'rclone/rclone', '--config=/a b/c.conf', 'x y', 'a b', '']);
  expect(() => splitShellWords('serve "restic')).toThrow(/unbalanced/);
  const t = new RcloneTransport('b2:bucket/x', { program: 'rclone --config /etc/rclone.conf', args: 'serve restic --stdio -v' });
  expect(t.argv).toEqual(['rclone', '--config', '/etc/rclone.conf', 'serve', 'restic', '--stdio', '-v', 'b2:bucket/x']);
});
