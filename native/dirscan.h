/* shared between jbackup_native.c and dirscan.c */
#ifndef JB_DIRSCAN_H
#define JB_DIRSCAN_H
#include <node_api.h>
#include <stddef.h>
/* get_path and throw_errno of jbackup_native.c: a malloc'd NUL-terminated copy of a Buffer path (NULL
   and a thrown TypeError when it is empty or holds a NUL); a JS Error with code, errno, syscall, path */
char *jb_get_path(napi_env env, napi_value v, size_t *out_len);
void jb_throw_errno(napi_env env, int err, const char *syscall, const char *path, size_t path_len);
/* xattr_call of jbackup_native.c: one xattr syscall (which 0 list, 1 get, 2 set; fd >= 0 the f-variant,
   else by path without following a final symlink), EINTR retried, Linux and macOS */
#include <sys/types.h>
ssize_t jb_xattr_call(int which, int fd, const char *path, const char *name, void *buf, size_t size);
napi_value jb_scan_dir(napi_env env, napi_callback_info info);
#endif
