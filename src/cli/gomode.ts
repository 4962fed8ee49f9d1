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
