/*
 * jbackup_native: tiny N-API addon providing syscalls Node's fs lacks:
 *   utimens(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec, noFollow)
 *   setMeta(path, dir, mode, uid, gid, chown, atimeSec, atimeNsec, mtimeSec, mtimeNsec): opens path with
 *     O_NOFOLLOW (O_DIRECTORY for dir, else O_NONBLOCK: a FIFO must not wait for a writer), then
 *     fchown (when chown; its failure is ignored, as restic does), fchmod and futimens on that
 *     descriptor: restore's metadata for files, FIFOs and directories in one call, through what
 *     was opened and never through a symlink (four syscalls from JavaScript cost ~2x the time)
 *   createFile(path, data, size, mode, uid, gid, chown, atimeSec, atimeNsec, mtimeSec, mtimeNsec):
 *     restore of a whole small file (create exclusively without following links, write, size,
 *     owner, mode, times, close) in one call
 *   mknod(path, mode, dev)
 *   xattrList / xattrGet / xattrSet: extended attributes by path (no follow) or fd (see below)
 *   mmapThreshold(bytes): glibc mallopt(M_MMAP_THRESHOLD); false where unavailable
 *   trimThreshold(bytes): glibc mallopt(M_TRIM_THRESHOLD); false where unavailable
 *   cdcCut(buf, start, end, min, avg, max, maskS, maskL, gear): FastCDC-2020 cut (the chunker's
 *     hot loop, ~4x the JavaScript version; src/chunker/fastcdc.ts has the reference and the rules)
 *   discard(buf): gives the whole pages inside buf back to the OS (madvise MADV_DONTNEED: they read
 *     as zeros afterwards); for recycled buffers that sit idle. Returns the bytes discarded.
 *   scryptMix(b, N, r, callback): scrypt's SMix (ROMix with Salsa20/8 BlockMix) of each 128*r-byte
 *     lane of b in place, on the thread pool, one lane after the other (one N*128*r table at a time,
 *     as OpenSSL and restic's Go do); SSE2 (x86-64), so ~2x OpenSSL's portable loop. The PBKDF2
 *     steps around it stay in node:crypto (src/repo/kdf.ts). Absent without SSE2.
 *   scanDir(path, xattrs): a directory's sorted names and every entry's lstat in one call (dirscan.c)
 *   aesCtr(key, iv, src, dst): AES-128/256-CTR of src into dst (dst may be src: in place), through
 *     the OpenSSL that Node itself carries (found with dlsym at load; absent when it is not there).
 *     node:crypto's update() returns a fresh, zero-filled buffer per call: for every blob of a
 *     restore or check that was a page-faulting allocation and a memset, here it is neither.
 */
#define _GNU_SOURCE 1
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif
#ifndef _WIN32
#include <dlfcn.h>
#include <sys/mman.h>
#endif
#include "dirscan.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#include <pthread.h>
#endif

static const char *errno_name(int e) {
  switch (e) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG)
    E(ENOEXEC) E(EBADF) E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT)
    E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL)
    E(ENFILE) E(EMFILE) E(ENOTTY) E(ETXTBSY) E(EFBIG) E(ENOSPC) E(ESPIPE)
    E(EROFS) E(EMLINK) E(EPIPE) E(EDOM) E(ERANGE) E(ENAMETOOLONG) E(ENOSYS)
    E(ELOOP) E(ENOTSUP) E(EDQUOT)
#if defined(ENODATA)
    E(ENODATA)
#endif
#if defined(EOPNOTSUPP) && EOPNOTSUPP != ENOTSUP
    E(EOPNOTSUPP)
#endif
#if defined(EOVERFLOW)
    E(EOVERFLOW)
#endif
#if defined(ENOTEMPTY)
    E(ENOTEMPTY)
#endif
#undef E
    default: return "EUNKNOWN";
  }
}


/* Throws a JS Error with .code = errno name, .errno = -errno, .syscall, .path. */
static void throw_errno(napi_env env, int err, const char *syscall,
                        const char *path, size_t path_len) {
  const char *code = errno_name(err);
  const char *msg = strerror(err);
  size_t len = strlen(syscall) + path_len + strlen(msg) + 4;
  char *buf = (char *)malloc(len);
  napi_value js_msg, js_code, error, tmp;
  if (buf == NULL) {
    napi_throw_error(env, code, msg);
    return;
  }
  /* Build "<syscall> <path>: <strerror>" without using %s on path, since the
     path may contain arbitrary bytes (never NUL though; we reject those). */
  {
    size_t o = 0, n;
    n = strlen(syscall); memcpy(buf + o, syscall, n); o += n;
    buf[o++] = ' ';
    memcpy(buf + o, path, path_len); o += path_len;
    buf[o++] = ':'; buf[o++] = ' ';
    n = strlen(msg); memcpy(buf + o, msg, n); o += n;
    buf[o] = '\0';
  }
  /* latin1 keeps every byte representable, even for non-UTF-8 names. */
  if (napi_create_string_latin1(env, buf, NAPI_AUTO_LENGTH, &js_msg) != napi_ok ||
      napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &js_code) != napi_ok ||
      napi_create_error(env, js_code, js_msg, &error) != napi_ok) {
    free(buf);
    napi_throw_error(env, code, msg);
    return;
  }
  free(buf);
  if (napi_create_int32(env, -err, &tmp) == napi_ok)
    napi_set_named_property(env, error, "errno", tmp);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &tmp) == napi_ok)
    napi_set_named_property(env, error, "syscall", tmp);
  if (napi_create_string_latin1(env, path, path_len, &tmp) == napi_ok)
    napi_set_named_property(env, error, "path", tmp);
  napi_throw(env, error);
}

/* Copies a Buffer argument into a freshly malloc'd NUL-terminated string.
   Returns NULL (with a pending exception) on failure. */
static char *get_path(napi_env env, napi_value v, size_t *out_len) {
  bool is_buf = false;
  void *data = NULL;
  size_t len = 0;
  char *s;
  if (napi_is_buffer(env, v, &is_buf) != napi_ok || !is_buf) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "path must be a Buffer");
    return NULL;
  }
  if (napi_get_buffer_info(env, v, &data, &len) != napi_ok) {
    napi_throw_error(env, NULL, "cannot read path buffer");
    return NULL;
  }
  if (len == 0 || memchr(data, 0, len) != NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE",
                          "path must be non-empty and must not contain NUL bytes");
    return NULL;
  }
  s = (char *)malloc(len + 1);
  if (s == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  memcpy(s, data, len);
  s[len] = '\0';
  *out_len = len;
  return s;
}

/* for dirscan.c (dirscan.h): the same argument and error conventions as every call here */
char *jb_get_path(napi_env env, napi_value v, size_t *out_len) { return get_path(env, v, out_len); }
void jb_throw_errno(napi_env env, int err, const char *syscall, const char *path, size_t path_len) {
  throw_errno(env, err, syscall, path, path_len);
}

static int get_bigint_i64(napi_env env, napi_value v, int64_t *out, const char *name) {
  bool lossless = false;
  if (napi_get_value_bigint_int64(env, v, out, &lossless) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", name);
    return 0;
  }
  if (!lossless) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", name);
    return 0;
  }
  return 1;
}

static int get_nsec(napi_env env, napi_value v, long *out, const char *name) {
  int64_t n;
  if (napi_get_value_int64(env, v, &n) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", name);
    return 0;
  }
  if (n < 0 || n > 999999999) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", name);
    return 0;
  }
  *out = (long)n;
  return 1;
}

/* atime (sec bigint, nsec) and mtime (sec bigint, nsec) from v[0..3] into ts; throws and returns 0 on a bad value */
static int get_times(napi_env env, const napi_value *v, struct timespec ts[2]) {
  int64_t asec, msec;
  long ansec, mnsec;
  if (!get_bigint_i64(env, v[0], &asec, "atimeSec must be a bigint in int64 range")) return 0;
  if (!get_nsec(env, v[1], &ansec, "atimeNsec must be an integer in [0, 1e9)")) return 0;
  if (!get_bigint_i64(env, v[2], &msec, "mtimeSec must be a bigint in int64 range")) return 0;
  if (!get_nsec(env, v[3], &mnsec, "mtimeNsec must be an integer in [0, 1e9)")) return 0;
  if ((int64_t)(time_t)asec != asec || (int64_t)(time_t)msec != msec) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "time does not fit in time_t");
    return 0;
  }
  ts[0].tv_sec = (time_t)asec;
  ts[0].tv_nsec = ansec;
  ts[1].tv_sec = (time_t)msec;
  ts[1].tv_nsec = mnsec;
  return 1;
}

static napi_value js_utimens(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  size_t path_len = 0;
  char *path;
  bool no_follow = false;
  struct timespec ts[2];
  int rc;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 6) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "utimens expects 6 arguments");
    return NULL;
  }
  if (!get_times(env, &argv[1], ts)) return NULL;
  if (napi_get_value_bool(env, argv[5], &no_follow) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "noFollow must be a boolean");
    return NULL;
  }
  path = get_path(env, argv[0], &path_len);
  if (path == NULL) return NULL;

  do {
    rc = utimensat(AT_FDCWD, path, ts, no_follow ? AT_SYMLINK_NOFOLLOW : 0);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) throw_errno(env, errno, "utimensat", path, path_len);
  free(path);
  return NULL;
}

/* Owner (best effort, as restic), mode, then times on an open descriptor: restore's last step for an
   entry, shared by setMeta and createFile. Returns 0, or an errno with *what naming the syscall. */
static int set_fd_meta(int fd, bool do_chown, uint32_t uid, uint32_t gid, uint32_t mode, const struct timespec ts[2], const char **what) {
  int rc;
  if (do_chown) (void)fchown(fd, (uid_t)uid, (gid_t)gid);
  do { rc = fchmod(fd, (mode_t)mode); } while (rc != 0 && errno == EINTR);
  if (rc != 0) { *what = "fchmod"; return errno; }
  do { rc = futimens(fd, ts); } while (rc != 0 && errno == EINTR);
  if (rc != 0) { *what = "futimens"; return errno; }
  return 0;
}

static napi_value js_set_meta(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  size_t path_len = 0;
  char *path;
  bool is_dir = false, do_chown = false;
  uint32_t mode, uid, gid;
  struct timespec ts[2];
  int fd, err = 0;
  const char *what = NULL;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 10) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "setMeta expects 10 arguments");
    return NULL;
  }
  if (napi_get_value_bool(env, argv[1], &is_dir) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &mode) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &uid) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &gid) != napi_ok ||
      napi_get_value_bool(env, argv[5], &do_chown) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setMeta: dir, mode, uid, gid, chown");
    return NULL;
  }
  if (!get_times(env, &argv[6], ts)) return NULL;
  path = get_path(env, argv[0], &path_len);
  if (path == NULL) return NULL;

  do {
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (is_dir ? O_DIRECTORY : O_NONBLOCK));
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    throw_errno(env, errno, "open", path, path_len);
    free(path);
    return NULL;
  }
  err = set_fd_meta(fd, do_chown, uid, gid, mode, ts, &what);
  close(fd);
  if (err) throw_errno(env, err, what, path, path_len);
  free(path);
  return NULL;
}

static bool get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len);

/* a time argument pair (seconds as a Number, integral and within time_t; nanoseconds in [0, 1e9)) */
static int get_time_num(napi_env env, napi_value vs, napi_value vn, struct timespec *ts) {
  double sec;
  long nsec;
  if (napi_get_value_double(env, vs, &sec) != napi_ok || !(sec >= -9007199254740992.0 && sec <= 9007199254740992.0) ||
      sec != (double)(int64_t)sec) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "seconds must be an integer");
    return 0;
  }
  ts->tv_sec = (time_t)(int64_t)sec;
  if ((int64_t)ts->tv_sec != (int64_t)sec) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "time does not fit in time_t");
    return 0;
  }
  if (!get_nsec(env, vn, &nsec, "nanoseconds must be an integer in [0, 1e9)")) return 0;
  ts->tv_nsec = nsec;
  return 1;
}

/*
 * createFile(path, data, size, mode, uid, gid, chown, atimeSec, atimeNsec, mtimeSec, mtimeNsec):
 * restore of a whole small file in one call: open(O_CREAT|O_EXCL|O_NOFOLLOW, 0600), write all of
 * data (null: nothing), ftruncate to size when data is shorter (holes), fchown (when chown; best
 * effort, as restic), fchmod, futimens, close. The six syscalls through node:fs were six calls
 * from JavaScript plus the separate metadata pass that opened every file a second time.
 * Throws with errno on failure (the file may then exist without its metadata: mode 0600).
 */
static napi_value js_create_file(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  size_t path_len = 0, len = 0, done = 0;
  char *path;
  uint8_t *data = NULL;
  double size_d;
  bool do_chown = false;
  uint32_t mode, uid, gid;
  struct timespec ts[2];
  napi_valuetype vt;
  int fd, rc, err = 0;
  const char *what = NULL;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 11) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "createFile expects 11 arguments");
    return NULL;
  }
  if (napi_typeof(env, argv[1], &vt) != napi_ok) return NULL;
  if (vt != napi_null && vt != napi_undefined && !get_bytes(env, argv[1], &data, &len)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "createFile: data must be a Uint8Array or null");
    return NULL;
  }
  if (napi_get_value_double(env, argv[2], &size_d) != napi_ok || !(size_d >= 0) || size_d > 9007199254740991.0 ||
      napi_get_value_uint32(env, argv[3], &mode) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &uid) != napi_ok ||
      napi_get_value_uint32(env, argv[5], &gid) != napi_ok ||
      napi_get_value_bool(env, argv[6], &do_chown) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "createFile: size, mode, uid, gid, chown");
    return NULL;
  }
  if (!get_time_num(env, argv[7], argv[8], &ts[0]) || !get_time_num(env, argv[9], argv[10], &ts[1])) return NULL;
  path = get_path(env, argv[0], &path_len);
  if (path == NULL) return NULL;

  do {
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    throw_errno(env, errno, "open", path, path_len);
    free(path);
    return NULL;
  }
  while (done < len) {
    ssize_t n = write(fd, data + done, len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno; what = "write"; break;
    }
    if (n == 0) { err = EIO; what = "write"; break; }
    done += (size_t)n;
  }
  if (!err && (double)len < size_d) {
    do { rc = ftruncate(fd, (off_t)size_d); } while (rc != 0 && errno == EINTR);
    if (rc != 0) { err = errno; what = "ftruncate"; }
  }
  if (!err) err = set_fd_meta(fd, do_chown, uid, gid, mode, ts, &what);
  if (close(fd) != 0 && !err && errno != EINTR) { err = errno; what = "close"; }
  if (err) throw_errno(env, err, what, path, path_len);
  free(path);
  return NULL;
}

static napi_value js_mknod(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  size_t path_len = 0;
  char *path;
  uint32_t mode;
  uint64_t dev;
  bool lossless = false;
  int rc;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "mknod expects 3 arguments");
    return NULL;
  }
  if (napi_get_value_uint32(env, argv[1], &mode) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "mode must be a number");
    return NULL;
  }
  if (napi_get_value_bigint_uint64(env, argv[2], &dev, &lossless) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "dev must be a bigint");
    return NULL;
  }
  if (!lossless || (uint64_t)(dev_t)dev != dev) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "dev does not fit in dev_t");
    return NULL;
  }
  path = get_path(env, argv[0], &path_len);
  if (path == NULL) return NULL;

  do {
    rc = mknod(path, (mode_t)mode, (dev_t)dev);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) throw_errno(env, errno, "mknod", path, path_len);
  free(path);
  return NULL;
}

/* mallopt(param, bytes) for the JS argument; false where glibc (or the parameter) is missing */
static napi_value set_mallopt(napi_env env, napi_callback_info info, int param) {
  size_t argc = 1;
  napi_value argv[1];
  napi_value result;
  int64_t bytes = 0;
  int ok = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return NULL;
  if (napi_get_value_int64(env, argv[0], &bytes) != napi_ok) return NULL;
#if defined(__GLIBC__)
  if (param != 0) ok = mallopt(param, (int)bytes) == 1;
#else
  (void)bytes;
  (void)param;
#endif
  napi_get_boolean(env, ok, &result);
  return result;
}

#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
#define JB_M_MMAP_THRESHOLD M_MMAP_THRESHOLD
#define JB_M_TRIM_THRESHOLD M_TRIM_THRESHOLD
#else
#define JB_M_MMAP_THRESHOLD 0
#define JB_M_TRIM_THRESHOLD 0
#endif

/*
 * glibc's mmap threshold: allocations of at least this size are mmapped (and unmapped when freed).
 * Setting it also turns off glibc's dynamic adjustment, which raises it to the largest freed
 * mmapped block (up to 32 MiB). See src/cli/main.ts for the settings jbackup uses and what they measured.
 */
static napi_value js_mmap_threshold(napi_env env, napi_callback_info info) {
  return set_mallopt(env, info, JB_M_MMAP_THRESHOLD);
}

/* a Uint8Array argument's bytes (Buffers included); false for anything else */
static bool get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  napi_typedarray_type t;
  void *d = NULL;
  if (napi_get_typedarray_info(env, v, &t, len, &d, NULL, NULL) != napi_ok || t != napi_uint8_array) return false;
  *data = (uint8_t *)d;
  return true;
}

/*
 * FastCDC 2020 cut, the exact transcription of FastCDC.cut in src/chunker/fastcdc.ts (fastcdc-rs
 * v2020 pair loop): length of the next chunk of buf[start, end). maskS/maskL are the strict and
 * loose masks, gear the 256-entry table (BigUint64Array).
 */
static napi_value js_cdc_cut(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 9) {
    napi_throw_type_error(env, NULL, "cdcCut: 9 arguments expected");
    return NULL;
  }
  napi_typedarray_type t;
  size_t len = 0, glen = 0;
  uint8_t *data = NULL;
  void *gdata = NULL;
  if (!get_bytes(env, argv[0], &data, &len)) {
    napi_throw_type_error(env, NULL, "cdcCut: buf must be a Uint8Array");
    return NULL;
  }
  if (napi_get_typedarray_info(env, argv[8], &t, &glen, &gdata, NULL, NULL) != napi_ok || t != napi_biguint64_array || glen != 256) {
    napi_throw_type_error(env, NULL, "cdcCut: gear must be a BigUint64Array(256)");
    return NULL;
  }
  int64_t start, end, min, avg, max;
  uint64_t maskS, maskL;
  bool lossless;
  if (napi_get_value_int64(env, argv[1], &start) != napi_ok || napi_get_value_int64(env, argv[2], &end) != napi_ok ||
      napi_get_value_int64(env, argv[3], &min) != napi_ok || napi_get_value_int64(env, argv[4], &avg) != napi_ok ||
      napi_get_value_int64(env, argv[5], &max) != napi_ok ||
      napi_get_value_bigint_uint64(env, argv[6], &maskS, &lossless) != napi_ok ||
      napi_get_value_bigint_uint64(env, argv[7], &maskL, &lossless) != napi_ok) {
    napi_throw_type_error(env, NULL, "cdcCut: bad numeric argument");
    return NULL;
  }
  if (start < 0 || start > end || (size_t)end > len) {
    napi_throw_range_error(env, NULL, "cdcCut: bad range");
    return NULL;
  }
  const uint8_t *buf = (const uint8_t *)data;
  const uint64_t *gear = (const uint64_t *)gdata;
  int64_t n = end - start;
  int64_t out = n;
  if (n > min) {
    int64_t center = avg;
    if (n > max) n = max;
    else if (n < center) center = n;
    int64_t p = start + (min - (min & 1));
    const int64_t e1 = start + (center - (center & 1));
    const int64_t e2 = start + (n - (n & 1));
    uint64_t h = 0;
    out = n;
    for (; p < e1; p += 2) {
      h = (h << 1) + gear[buf[p]];
      if ((h & maskS) == 0) { out = p - start; goto done; }
      h = (h << 1) + gear[buf[p + 1]];
      if ((h & maskS) == 0) { out = p + 1 - start; goto done; }
    }
    for (; p < e2; p += 2) {
      h = (h << 1) + gear[buf[p]];
      if ((h & maskL) == 0) { out = p - start; goto done; }
      h = (h << 1) + gear[buf[p + 1]];
      if ((h & maskL) == 0) { out = p + 1 - start; goto done; }
    }
  }
done:
  napi_create_int64(env, out, &result);
  return result;
}

/*
 * glibc's trim threshold: free memory at the top of a heap beyond this goes back to the OS (the
 * default rises dynamically with the mmap threshold, up to 64 MiB).
 */
static napi_value js_trim_threshold(napi_env env, napi_callback_info info) {
  return set_mallopt(env, info, JB_M_TRIM_THRESHOLD);
}


/*
 * OpenSSL's EVP cipher calls, resolved at load time from the running process (Node links OpenSSL in
 * and exports its symbols for addons; a Node built against a shared libcrypto has it loaded too).
 * Declared here rather than included so the addon neither needs OpenSSL headers nor fails to load
 * where the symbols are missing: aesCtr is then simply not exported and callers use node:crypto.
 */
typedef struct jb_evp_ctx jb_evp_ctx;
typedef struct jb_evp_cipher jb_evp_cipher;
static struct {
  jb_evp_ctx *(*ctx_new)(void);
  void (*ctx_free)(jb_evp_ctx *);
  int (*init)(jb_evp_ctx *, const jb_evp_cipher *, void *, const unsigned char *, const unsigned char *);
  int (*update)(jb_evp_ctx *, unsigned char *, int *, const unsigned char *, int);
  const jb_evp_cipher *(*aes128ctr)(void);
  const jb_evp_cipher *(*aes256ctr)(void);
} evp;

static bool evp_resolve(void) {
#ifdef _WIN32
  return false;
#else
  *(void **)&evp.ctx_new = dlsym(RTLD_DEFAULT, "EVP_CIPHER_CTX_new");
  *(void **)&evp.ctx_free = dlsym(RTLD_DEFAULT, "EVP_CIPHER_CTX_free");
  *(void **)&evp.init = dlsym(RTLD_DEFAULT, "EVP_EncryptInit_ex");
  *(void **)&evp.update = dlsym(RTLD_DEFAULT, "EVP_EncryptUpdate");
  *(void **)&evp.aes128ctr = dlsym(RTLD_DEFAULT, "EVP_aes_128_ctr");
  *(void **)&evp.aes256ctr = dlsym(RTLD_DEFAULT, "EVP_aes_256_ctr");
  return evp.ctx_new && evp.ctx_free && evp.init && evp.update && evp.aes128ctr && evp.aes256ctr;
#endif
}

/* aesCtr(key: 16 or 32 bytes, iv: 16 bytes, src, dst): dst.length >= src.length; returns undefined. */
static napi_value js_aes_ctr(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) {
    napi_throw_type_error(env, NULL, "aesCtr: 4 arguments expected");
    return NULL;
  }
  uint8_t *key, *iv, *src, *dst;
  size_t klen, ivlen, slen, dlen;
  if (!get_bytes(env, argv[0], &key, &klen) || !get_bytes(env, argv[1], &iv, &ivlen) ||
      !get_bytes(env, argv[2], &src, &slen) || !get_bytes(env, argv[3], &dst, &dlen)) {
    napi_throw_type_error(env, NULL, "aesCtr: Uint8Array arguments expected");
    return NULL;
  }
  if ((klen != 16 && klen != 32) || ivlen != 16 || dlen < slen) {
    napi_throw_range_error(env, NULL, "aesCtr: bad key, iv or output length");
    return NULL;
  }
  /* CTR in place is allowed; a partial overlap is not */
  if (src != dst && src < dst + slen && dst < src + slen) {
    napi_throw_range_error(env, NULL, "aesCtr: src and dst overlap");
    return NULL;
  }
  jb_evp_ctx *ctx = evp.ctx_new();
  if (ctx == NULL) {
    napi_throw_error(env, NULL, "aesCtr: out of memory");
    return NULL;
  }
  bool ok = evp.init(ctx, klen == 32 ? evp.aes256ctr() : evp.aes128ctr(), NULL, key, iv) == 1;
  size_t done = 0;
  while (ok && done < slen) {
    size_t n = slen - done;
    if (n > (1u << 30)) n = 1u << 30;
    int outl = 0;
    ok = evp.update(ctx, dst + done, &outl, src + done, (int)n) == 1 && (size_t)outl == n;
    done += n;
  }
  evp.ctx_free(ctx);
  if (!ok) napi_throw_error(env, NULL, "aesCtr: OpenSSL failed");
  return NULL;
}

static napi_value js_discard(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_value result;
  uint8_t *data;
  size_t len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !get_bytes(env, argv[0], &data, &len)) {
    napi_throw_type_error(env, NULL, "discard: a Uint8Array expected");
    return NULL;
  }
  size_t done = 0;
#if !defined(_WIN32) && defined(MADV_DONTNEED)
  long page = sysconf(_SC_PAGESIZE);
  if (page > 0 && len > 0) {
    uintptr_t a = ((uintptr_t)data + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t b = ((uintptr_t)data + len) & ~((uintptr_t)page - 1);
    if (b > a && madvise((void *)a, b - a, MADV_DONTNEED) == 0) done = b - a;
  }
#endif
  napi_create_int64(env, (int64_t)done, &result);
  return result;
}


#if defined(__SSE2__)
/*
 * scrypt SMix, after the structure of Colin Percival's SSE2 reference: blocks are kept with their
 * 16 words in "diagonal" order (word i of the shuffled block is word 5*i mod 16 of the block), so
 * that the column and row rounds of Salsa20/8 are plain lane-wise SSE2 operations with a rotation
 * of three registers between them.
 */
static inline __m128i rotl_xor(__m128i x, __m128i t, int n) {
  return _mm_xor_si128(x, _mm_xor_si128(_mm_slli_epi32(t, n), _mm_srli_epi32(t, 32 - n)));
}

/*
 * One half of a Salsa20 double round on blocks in diagonal order: the column round is
 * half(X0, X1, X2, X3), the row round the same with X1 and X3 swapped.
 */
static inline void salsa_half(__m128i *a, __m128i *b, __m128i *c, __m128i *d) {
  *b = rotl_xor(*b, _mm_add_epi32(*a, *d), 7);
  *c = rotl_xor(*c, _mm_add_epi32(*b, *a), 9);
  *d = rotl_xor(*d, _mm_add_epi32(*c, *b), 13);
  *a = rotl_xor(*a, _mm_add_epi32(*d, *c), 18);
  *b = _mm_shuffle_epi32(*b, 0x93);
  *c = _mm_shuffle_epi32(*c, 0x4E);
  *d = _mm_shuffle_epi32(*d, 0x39);
}

static void salsa20_8(__m128i B[4]) {
  __m128i X0 = B[0], X1 = B[1], X2 = B[2], X3 = B[3];
  for (int i = 0; i < 8; i += 2) {
    salsa_half(&X0, &X1, &X2, &X3); /* columns */
    salsa_half(&X0, &X3, &X2, &X1); /* rows */
  }
  B[0] = _mm_add_epi32(B[0], X0);
  B[1] = _mm_add_epi32(B[1], X1);
  B[2] = _mm_add_epi32(B[2], X2);
  B[3] = _mm_add_epi32(B[3], X3);
}

/* X = Salsa20/8(X xor in), copied to out: one 64-byte block of BlockMix */
static inline void mix_block(__m128i X[4], const __m128i *in, __m128i *out) {
  for (int k = 0; k < 4; k++) X[k] = _mm_xor_si128(X[k], in[k]);
  salsa20_8(X);
  for (int k = 0; k < 4; k++) out[k] = X[k];
}

/* Bout = BlockMix(Bin): 2r 64-byte blocks, even outputs first then odd (scrypt's shuffle) */
static void blockmix_salsa8(const __m128i *Bin, __m128i *Bout, size_t r) {
  __m128i X[4];
  X[0] = Bin[8 * r - 4]; X[1] = Bin[8 * r - 3]; X[2] = Bin[8 * r - 2]; X[3] = Bin[8 * r - 1];
  for (size_t i = 0; i < r; i++) {
    mix_block(X, &Bin[i * 8], &Bout[i * 4]);
    mix_block(X, &Bin[i * 8 + 4], &Bout[(r + i) * 4]);
  }
}

static inline uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline void put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

/* SMix of one 128*r-byte lane B in place; V (128*r*N bytes), X, Y (128*r each) are scratch */
static void smix(uint8_t *B, size_t r, uint64_t N, __m128i *V, __m128i *X, __m128i *Y) {
  const size_t words = 32 * r; /* uint32 words per lane */
  const size_t vecs = 8 * r;   /* __m128i per lane */
  uint32_t *X32 = (uint32_t *)X;
  for (size_t k = 0; k < 2 * r; k++)
    for (size_t i = 0; i < 16; i++) X32[k * 16 + i] = le32(&B[(k * 16 + (i * 5 % 16)) * 4]);
  for (uint64_t i = 0; i < N; i += 2) {
    memcpy(&V[i * vecs], X, 128 * r);
    blockmix_salsa8(X, Y, r);
    memcpy(&V[(i + 1) * vecs], Y, 128 * r);
    blockmix_salsa8(Y, X, r);
  }
  uint32_t *Y32 = (uint32_t *)Y;
  for (uint64_t i = 0; i < N; i += 2) {
    /* Integerify: word 0 of the last 64-byte block (position 0 is not moved by the shuffle) */
    uint64_t j = X32[words - 16] & (N - 1);
    for (size_t k = 0; k < vecs; k++) X[k] = _mm_xor_si128(X[k], V[j * vecs + k]);
    blockmix_salsa8(X, Y, r);
    j = Y32[words - 16] & (N - 1);
    for (size_t k = 0; k < vecs; k++) Y[k] = _mm_xor_si128(Y[k], V[j * vecs + k]);
    blockmix_salsa8(Y, X, r);
  }
  for (size_t k = 0; k < 2 * r; k++)
    for (size_t i = 0; i < 16; i++) put_le32(&B[(k * 16 + (i * 5 % 16)) * 4], X32[k * 16 + i]);
}

typedef struct {
  napi_async_work work;
  napi_ref buf_ref;
  napi_ref cb_ref;
  uint8_t *data;
  size_t r, p;
  uint64_t N;
  int threads;
  int failed;
} scrypt_job;

typedef struct {
  scrypt_job *job;
  size_t from, step;
  int failed;
} scrypt_lanes;

/* the lanes from, from + step, ... each with its own table */
static void *scrypt_run_lanes(void *arg) {
  scrypt_lanes *l = (scrypt_lanes *)arg;
  scrypt_job *job = l->job;
  size_t lane = 128 * job->r;
  void *v = NULL, *xy = NULL;
  if (posix_memalign(&v, 64, lane * (size_t)job->N) != 0 || posix_memalign(&xy, 64, 2 * lane) != 0) {
    free(v);
    l->failed = 1;
    return NULL;
  }
  for (size_t i = l->from; i < job->p; i += l->step)
    smix(job->data + i * lane, job->r, job->N, (__m128i *)v, (__m128i *)xy, (__m128i *)((uint8_t *)xy + lane));
  free(v);
  free(xy);
  return NULL;
}

static void scrypt_execute(napi_env env, void *arg) {
  scrypt_job *job = (scrypt_job *)arg;
  scrypt_lanes a = { job, 0, 1, 0 };
  if (job->threads > 1 && job->p > 1) {
    /* two tables at once: lanes split between this thread and one more */
    scrypt_lanes b = { job, 1, 2, 0 };
    a.step = 2;
    pthread_t t;
    if (pthread_create(&t, NULL, scrypt_run_lanes, &b) == 0) {
      scrypt_run_lanes(&a);
      pthread_join(t, NULL);
      job->failed = a.failed || b.failed;
      return;
    }
    a.step = 1;
  }
  scrypt_run_lanes(&a);
  job->failed = a.failed;
}

static void scrypt_complete(napi_env env, napi_status status, void *arg) {
  scrypt_job *job = (scrypt_job *)arg;
  napi_value cb, undef, argv[1];
  napi_get_reference_value(env, job->cb_ref, &cb);
  napi_get_undefined(env, &undef);
  if (status != napi_ok || job->failed) {
    napi_value msg;
    napi_create_string_utf8(env, "scryptMix: out of memory", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &argv[0]);
  } else {
    napi_get_null(env, &argv[0]);
  }
  napi_delete_reference(env, job->buf_ref);
  napi_delete_reference(env, job->cb_ref);
  napi_delete_async_work(env, job->work);
  free(job);
  napi_call_function(env, undef, cb, 1, argv, NULL);
}

/* scryptMix(b: Uint8Array of p*128*r bytes, N, r, callback(err), threads = 1) */
static napi_value js_scrypt_mix(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) {
    napi_throw_type_error(env, NULL, "scryptMix: 4 arguments expected");
    return NULL;
  }
  int32_t threads = 1;
  if (argc >= 5) napi_get_value_int32(env, argv[4], &threads);
  uint8_t *data;
  size_t len;
  int64_t N, r;
  napi_valuetype t;
  if (!get_bytes(env, argv[0], &data, &len) || napi_get_value_int64(env, argv[1], &N) != napi_ok ||
      napi_get_value_int64(env, argv[2], &r) != napi_ok || napi_typeof(env, argv[3], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, NULL, "scryptMix(b, N, r, callback) expected");
    return NULL;
  }
  if (N < 2 || (N & (N - 1)) != 0 || N > ((int64_t)1 << 32) || r < 1 || r > 1024 || len == 0 || len % (size_t)(128 * r) != 0 ||
      (uint64_t)(128 * r) * (uint64_t)N > ((uint64_t)1 << 34)) {
    napi_throw_range_error(env, NULL, "scryptMix: bad parameters");
    return NULL;
  }
  scrypt_job *job = (scrypt_job *)calloc(1, sizeof(*job));
  if (!job) {
    napi_throw_error(env, NULL, "scryptMix: out of memory");
    return NULL;
  }
  job->data = data;
  job->N = (uint64_t)N;
  job->r = (size_t)r;
  job->p = len / (size_t)(128 * r);
  job->threads = threads;
  napi_value name;
  napi_create_string_utf8(env, "jbackup.scryptMix", NAPI_AUTO_LENGTH, &name);
  if (napi_create_reference(env, argv[0], 1, &job->buf_ref) != napi_ok || napi_create_reference(env, argv[3], 1, &job->cb_ref) != napi_ok ||
      napi_create_async_work(env, NULL, name, scrypt_execute, scrypt_complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    free(job);
    napi_throw_error(env, NULL, "scryptMix: cannot queue the work");
    return NULL;
  }
  return NULL;
}
#endif

/*
 * Extended attributes (restic keeps them in the node's extended_attributes):
 *   xattrList(target): the raw NUL-separated name list (llistxattr on a Buffer path, flistxattr on
 *     an fd number), or null when there are none
 *   xattrGet(target, name): the value (lgetxattr / fgetxattr)
 *   xattrSet(target, name, value): lsetxattr / fsetxattr (flags 0: create or replace)
 * Errors throw with .code = the errno name (ENOTSUP where the file system has none, ENODATA when the
 * attribute vanished). Linux and macOS; absent elsewhere.
 */
#if defined(__linux__) || defined(__APPLE__)
#include <sys/xattr.h>
#ifndef ENODATA
#define ENODATA ENOATTR
#endif

/* One xattr syscall; `which` 0 list, 1 get, 2 set. fd >= 0 uses the f-variant, else the path
   without following a final symlink. */
static ssize_t xattr_call(int which, int fd, const char *path, const char *name, void *buf, size_t size) {
  ssize_t r;
  do {
#if defined(__APPLE__)
    int opt = XATTR_NOFOLLOW;
    if (which == 0) r = fd >= 0 ? flistxattr(fd, (char *)buf, size, 0) : listxattr(path, (char *)buf, size, opt);
    else if (which == 1) r = fd >= 0 ? fgetxattr(fd, name, buf, size, 0, 0) : getxattr(path, name, buf, size, 0, opt);
    else r = fd >= 0 ? fsetxattr(fd, name, buf, size, 0, 0) : setxattr(path, name, buf, size, 0, opt);
#else
    if (which == 0) r = fd >= 0 ? flistxattr(fd, (char *)buf, size) : llistxattr(path, (char *)buf, size);
    else if (which == 1) r = fd >= 0 ? fgetxattr(fd, name, buf, size) : lgetxattr(path, name, buf, size);
    else r = fd >= 0 ? fsetxattr(fd, name, buf, size, 0) : lsetxattr(path, name, buf, size, 0);
#endif
  } while (r < 0 && errno == EINTR);
  return r;
}

ssize_t jb_xattr_call(int which, int fd, const char *path, const char *name, void *buf, size_t size) {
  return xattr_call(which, fd, path, name, buf, size);
}

/* The target argument: a Buffer path (malloc'd copy in *path) or an fd number. */
static bool xattr_target(napi_env env, napi_value v, int *fd, char **path, size_t *path_len) {
  napi_valuetype t;
  *fd = -1;
  *path = NULL;
  *path_len = 0;
  if (napi_typeof(env, v, &t) == napi_ok && t == napi_number) {
    int32_t n;
    if (napi_get_value_int32(env, v, &n) != napi_ok || n < 0) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "fd must be a non-negative integer");
      return false;
    }
    *fd = n;
    return true;
  }
  *path = get_path(env, v, path_len);
  return *path != NULL;
}

/* A NUL-terminated copy of a Buffer attribute name. */
static char *xattr_name(napi_env env, napi_value v) {
  size_t len;
  return get_path(env, v, &len);
}

static void xattr_throw(napi_env env, int err, const char *syscall, int fd, const char *path, size_t path_len) {
  char fdbuf[32];
  if (fd >= 0) {
    snprintf(fdbuf, sizeof fdbuf, "fd %d", fd);
    throw_errno(env, err, syscall, fdbuf, strlen(fdbuf));
  } else {
    throw_errno(env, err, syscall, path, path_len);
  }
}

/* List or get: a first call into a 4 KiB stack buffer (one syscall in the usual case, also for an
   empty list); on ERANGE ask for the size and read into a buffer of that size. */
static napi_value xattr_read(napi_env env, int which, int fd, const char *path, size_t path_len, const char *name) {
  char small[4096];
  char *buf = small;
  size_t size = sizeof small;
  ssize_t r;
  napi_value result;
  const char *sc = which == 0 ? (fd >= 0 ? "flistxattr" : "llistxattr") : (fd >= 0 ? "fgetxattr" : "lgetxattr");
  for (int tries = 0;; tries++) {
    r = xattr_call(which, fd, path, name, buf, size);
    if (r >= 0 || errno != ERANGE || tries >= 8) break;
    /* grown between the calls: ask again */
    if (buf != small) free(buf);
    buf = NULL;
    r = xattr_call(which, fd, path, name, NULL, 0);
    if (r < 0) break;
    size = (size_t)r + 1;
    buf = (char *)malloc(size);
    if (buf == NULL) {
      napi_throw_error(env, "ENOMEM", "out of memory");
      return NULL;
    }
  }
  if (r < 0) {
    int e = errno;
    if (buf != small) free(buf);
    xattr_throw(env, e, sc, fd, path, path_len);
    return NULL;
  }
  if (which == 0 && r == 0) {
    napi_get_null(env, &result);
  } else if (napi_create_buffer_copy(env, (size_t)r, buf, NULL, &result) != napi_ok) {
    result = NULL;
  }
  if (buf != small) free(buf);
  return result;
}

static napi_value js_xattr_list(napi_env env, napi_callback_info info) {
  size_t argc = 1, path_len;
  napi_value argv[1], result;
  int fd;
  char *path;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "xattrList expects a path or an fd");
    return NULL;
  }
  if (!xattr_target(env, argv[0], &fd, &path, &path_len)) return NULL;
  result = xattr_read(env, 0, fd, path, path_len, NULL);
  free(path);
  return result;
}

static napi_value js_xattr_get(napi_env env, napi_callback_info info) {
  size_t argc = 2, path_len;
  napi_value argv[2], result;
  int fd;
  char *path, *name;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "xattrGet expects a target and a name");
    return NULL;
  }
  if (!xattr_target(env, argv[0], &fd, &path, &path_len)) return NULL;
  name = xattr_name(env, argv[1]);
  if (name == NULL) { free(path); return NULL; }
  result = xattr_read(env, 1, fd, path, path_len, name);
  free(name);
  free(path);
  return result;
}

static napi_value js_xattr_set(napi_env env, napi_callback_info info) {
  size_t argc = 3, path_len, vlen = 0;
  napi_value argv[3];
  int fd;
  char *path, *name;
  void *value = NULL;
  bool is_buf = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "xattrSet expects a target, a name and a value");
    return NULL;
  }
  if (napi_is_buffer(env, argv[2], &is_buf) != napi_ok || !is_buf || napi_get_buffer_info(env, argv[2], &value, &vlen) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "value must be a Buffer");
    return NULL;
  }
  if (!xattr_target(env, argv[0], &fd, &path, &path_len)) return NULL;
  name = xattr_name(env, argv[1]);
  if (name == NULL) { free(path); return NULL; }
  /* an empty Buffer may have no storage; the kernel wants a valid pointer only when size > 0 */
  if (xattr_call(2, fd, path, name, vlen ? value : (void *)"", vlen) < 0)
    xattr_throw(env, errno, fd >= 0 ? "fsetxattr" : "lsetxattr", fd, path, path_len);
  free(name);
  free(path);
  return NULL;
}
#endif

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "utimens", NULL, js_utimens, NULL, NULL, NULL, napi_enumerable, NULL },
    { "setMeta", NULL, js_set_meta, NULL, NULL, NULL, napi_enumerable, NULL },
    { "createFile", NULL, js_create_file, NULL, NULL, NULL, napi_enumerable, NULL },
    { "mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL },
    { "mmapThreshold", NULL, js_mmap_threshold, NULL, NULL, NULL, napi_enumerable, NULL },
    { "cdcCut", NULL, js_cdc_cut, NULL, NULL, NULL, napi_enumerable, NULL },
    { "trimThreshold", NULL, js_trim_threshold, NULL, NULL, NULL, napi_enumerable, NULL },
    { "discard", NULL, js_discard, NULL, NULL, NULL, napi_enumerable, NULL },
    { "scanDir", NULL, jb_scan_dir, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok)
    return NULL;
#if defined(__SSE2__)
  {
    napi_property_descriptor sm = { "scryptMix", NULL, js_scrypt_mix, NULL, NULL, NULL, napi_enumerable, NULL };
    if (napi_define_properties(env, exports, 1, &sm) != napi_ok) return NULL;
  }
#endif
#if defined(__linux__) || defined(__APPLE__)
  {
    napi_property_descriptor xa[] = {
      { "xattrList", NULL, js_xattr_list, NULL, NULL, NULL, napi_enumerable, NULL },
      { "xattrGet", NULL, js_xattr_get, NULL, NULL, NULL, napi_enumerable, NULL },
      { "xattrSet", NULL, js_xattr_set, NULL, NULL, NULL, napi_enumerable, NULL },
    };
    if (napi_define_properties(env, exports, 3, xa) != napi_ok) return NULL;
  }
#endif
  if (evp_resolve()) {
    napi_property_descriptor aes = { "aesCtr", NULL, js_aes_ctr, NULL, NULL, NULL, napi_enumerable, NULL };
    if (napi_define_properties(env, exports, 1, &aes) != napi_ok) return NULL;
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
