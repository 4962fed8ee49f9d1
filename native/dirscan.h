/* shared between jbackup_native.c and dirscan.c */
#ifndef JB_DIRSCAN_H
#define JB_DIRSCAN_H
#include <node_api.h>
const char *jb_errno_name(int e);
napi_value jb_scan_dir(napi_env env, napi_callback_info info);
#endif
