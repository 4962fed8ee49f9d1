/** Go's os.FileMode.String() for a node's Go mode bits: restic prints it as `permissions` (ls, find). */
export function goModeString(mode: number): string {
  const letters = 'dalTLDpSugct?';
  let out = '';
  for (let i = 0; i < letters.length; i++) if ((mode >>> (31 - i)) & 1) out += letters[i];
  if (!out) out = '-';
  const rwx = 'rwxrwxrwx';
  for (let i = 0; i < 9; i++) out += (mode >>> (8 - i)) & 1 ? rwx[i] : '-';
  return out;
}

/** restic's TimeFormat ("2006-01-02 15:04:05") of an RFC 3339 time, in the local zone (key list). */
export function goLocalTime(rfc3339: string): string {
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return rfc3339;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
