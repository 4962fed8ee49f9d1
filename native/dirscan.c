/*
 * scanDir(path, xattrs): one directory's entries and their lstat in one call, for the backup walk.
 *
 * Node's readdirSync + lstatSync(…, {bigint: true}) per entry allocates a BigIntStats (an object
 * and ~18 BigInts) for every file; on an unchanged re-run of /usr/share (53k entries) those
 * allocations were most of the 2.3 s the profile spent in the garbage collector. Here the names
 * come back as one Buffer (NUL-separated, sorted by bytes as restic sorts tree nodes) and the
 * metadata as one Float64Array of FIELDS numbers per entry (exact: values >= 2^53 are flagged,
 * and the caller asks Node for those).
 *
 * Per entry (see src/archiver/dirscan.ts, which names them): err (0, an errno, or -1 = a value
 * too large for a double), mode, uid, gid, nlink, ino, dev, rdev, size, atime s/ns, mtime s/ns,
 * ctime s/ns, xattr (the size llistxattr reports for the name list, 0 = none; -1 = not probed:
 * symlinks, no probe asked, or not Linux; -2 = the probe failed).
 * Throws (code = errno name) when the directory itself cannot be opened or read.
 */
#define _GNU_SOURCE 1
#include <node_api.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "dirscan.h"

#define FIELDS 16
#define SAFE_MAX 9007199254740992.0 /* 2^53 */

static int cmp_names(const void *a, const void *b) {
  /* strcmp compares as unsigned char: the byte order of Buffer.compare */
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* throws the error (naming the directory) and frees the path copy */
static napi_value fail(napi_env env, int err, const char *syscall, char *dir, size_t len) {
  jb_throw_errno(env, err, syscall, dir, len);
  free(dir);
  return NULL;
}

static double big(double v, bool *flag) {
  if (v >= SAFE_MAX) *flag = true;
  return v;
}

napi_value jb_scan_dir(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "scanDir expects a path");
    return NULL;
  }
  bool want_xattr = false;
  if (argc >= 2) napi_get_value_bool(env, argv[1], &want_xattr);
  size_t len = 0;
  char *dir = jb_get_path(env, argv[0], &len);
  if (dir == NULL) return NULL;

  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return fail(env, errno, "open", dir, len);
  DIR *d = fdopendir(dfd);
  if (d == NULL) { int e = errno; close(dfd); return fail(env, e, "fdopendir", dir, len); }

  size_t n = 0, cap = 64, bytes = 0;
  char **names = malloc(cap * sizeof *names);
  if (names == NULL) { closedir(d); return fail(env, ENOMEM, "malloc", dir, len); }
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (de == NULL) {
      if (errno != 0) {
        int e = errno;
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        closedir(d);
        return fail(env, e, "readdir", dir, len);
      }
      break;
    }
    const char *nm = de->d_name;
    if (nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0'))) continue;
    if (n == cap) {
      char **nn = realloc(names, cap * 2 * sizeof *names);
      if (nn == NULL) { for (size_t i = 0; i < n; i++) free(names[i]); free(names); closedir(d); return fail(env, ENOMEM, "malloc", dir, len); }
      names = nn;
      cap *= 2;
    }
    names[n] = strdup(nm);
    if (names[n] == NULL) { for (size_t i = 0; i < n; i++) free(names[i]); free(names); closedir(d); return fail(env, ENOMEM, "malloc", dir, len); }
    bytes += strlen(nm) + 1;
    n++;
  }
  qsort(names, n, sizeof *names, cmp_names);

  napi_value out = NULL, jnames, ab, st;
  void *nbuf = NULL, *sbuf = NULL;
  if (napi_create_buffer(env, bytes, &nbuf, &jnames) != napi_ok ||
      napi_create_arraybuffer(env, n * FIELDS * sizeof(double), &sbuf, &ab) != napi_ok ||
      napi_create_typedarray(env, napi_float64_array, n * FIELDS, ab, 0, &st) != napi_ok) {
    goto done;
  }
  {
    char *np = (char *)nbuf;
    double *s = (double *)sbuf;
    /* dir + '/' + a name (NAME_MAX 255): the xattr probe's path; unprobed (-1) if it cannot be had */
    size_t cap_path = len + 2 + 256;
    char *path = want_xattr ? malloc(cap_path) : NULL;
    size_t plen = len;
    if (path) {
      memcpy(path, dir, len);
      if (path[plen - 1] != '/') path[plen++] = '/';
    }
    for (size_t i = 0; i < n; i++) {
      size_t l = strlen(names[i]);
      memcpy(np, names[i], l + 1);
      np += l + 1;
      double *f = s + i * FIELDS;
      struct stat sb;
      int r;
      do { r = fstatat(dfd, names[i], &sb, AT_SYMLINK_NOFOLLOW); } while (r < 0 && errno == EINTR);
      if (r < 0) { memset(f, 0, FIELDS * sizeof(double)); f[0] = errno; continue; }
      bool flag = false;
      f[1] = (double)sb.st_mode;
      f[2] = (double)sb.st_uid;
      f[3] = (double)sb.st_gid;
      f[4] = big((double)sb.st_nlink, &flag);
      f[5] = big((double)sb.st_ino, &flag);
      f[6] = big((double)sb.st_dev, &flag);
      f[7] = big((double)sb.st_rdev, &flag);
      f[8] = big((double)sb.st_size, &flag);
#if defined(__APPLE__)
      f[9] = (double)sb.st_atimespec.tv_sec; f[10] = (double)sb.st_atimespec.tv_nsec;
      f[11] = (double)sb.st_mtimespec.tv_sec; f[12] = (double)sb.st_mtimespec.tv_nsec;
      f[13] = (double)sb.st_ctimespec.tv_sec; f[14] = (double)sb.st_ctimespec.tv_nsec;
#else
      f[9] = (double)sb.st_atim.tv_sec; f[10] = (double)sb.st_atim.tv_nsec;
      f[11] = (double)sb.st_mtim.tv_sec; f[12] = (double)sb.st_mtim.tv_nsec;
      f[13] = (double)sb.st_ctim.tv_sec; f[14] = (double)sb.st_ctim.tv_nsec;
#endif
      f[15] = -1;
      /* the addon's one xattr call (macOS too: without the probe there, every entry stayed
         unprobed and no parent subtree was ever reused) */
      if (path && !S_ISLNK(sb.st_mode) && plen + l < cap_path) {
        memcpy(path + plen, names[i], l + 1);
        ssize_t x = jb_xattr_call(0, -1, path, NULL, NULL, 0);
        if (x >= 0) f[15] = (double)x;
        else if (errno == ENOTSUP || errno == EOPNOTSUPP) f[15] = 0;
        else f[15] = -2;
      }
      f[0] = flag ? -1 : 0;
    }
    napi_value keys[2], vals[2] = { jnames, st };
    napi_create_string_utf8(env, "names", NAPI_AUTO_LENGTH, &keys[0]);
    napi_create_string_utf8(env, "st", NAPI_AUTO_LENGTH, &keys[1]);
    napi_create_object(env, &out);
    napi_set_property(env, out, keys[0], vals[0]);
    napi_set_property(env, out, keys[1], vals[1]);
    free(path);
  }
done:
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  closedir(d);
  free(dir);
  return out;
}
