/**
 * Loopback Jottacloud emulator (library entry point).
 *
 * One HTTP(S) listener on 127.0.0.1 plays every Jottacloud host, dispatching on path and `Host`:
 *   id.jottacloud.com   /auth/realms/<realm>/.well-known/openid-configuration, …/protocol/openid-connect/token
 *   api.jottacloud.com  /account/v1/customer, /files/v1/allocate, /files/v1/purge_trash
 *   (upload URLs)       <url>/files/v1/upload/<id>   (always on 127.0.0.1, dialled directly by clients)
 *   jfs.jottacloud.com  /jfs/<user>[/<device>[/<mountpoint>[/<path…>]]]
 * Requests with Host 127.0.0.1/localhost (or any unknown host) may use every path; requests with
 * a Jottacloud Host only get that host's paths. Real clients reach it through a CONNECT proxy
 * (see connect-proxy.ts) and trust `caCert` (e.g. SSL_CERT_FILE for rclone).
 *
 * Control endpoints (never subject to faults), on `<url>/_emulator/`:
 *   POST login-token            → {"loginToken"}: a fresh single-use personal login token
 *   POST revoke-refresh-tokens  → {"revoked": n}: every refresh-token family dies (access tokens live on)
 *   POST revoke-access-tokens   → every access token issued so far answers 401
 *   POST faults                 JSON {"spec"?: "500=0.1,…", "seed"?: n, "once"?: OneShotFault|OneShotFault[], "clear"?: true}
 *   POST settings               JSON {"tokenTtl"?: seconds, "quota"?: bytes, "quirks"?: ["quota-460", …],
 *                               "liststreamMaxFiles"?: n (-1: no limit), "locked"?: {write?, read?, cause?}}
 *   GET  stats                  → counters (see below); GET health → {"ok":true}
 *
 * Stats keys: `requests`, `req.<endpoint>` (`id.well-known`, `id.token`, `api.customer`,
 * `api.allocate`, `api.purge_trash`, `upload`, `jfs.user|device|get|bin|liststream|list|share|
 * mkDir|dl|rm|dlDir|rmDir|mv|cp|mvDir|cphash|createDevice|createMountpoint|legacyUpload`),
 * `fault.<status>|drop-upload|corrupt-upload|slow|total`, `upload.completed|resumed|maxResumePos|incomplete|corrupt|aborted`,
 * `allocate.upload|dedup|unchanged|resume|maxResumePos`, `token.login|password|refresh|refresh.basic|
 * refresh.body|refresh.reuse|refresh.rejected|login.reused`, `auth.rejected`, `download.range`,
 * `trash.purgedFiles|purgedFolders`, `cphash.touch|dedup|unknown`, `state.usage|pendingUploads|liveTokenFamilies`.
 */
export { startEmulator, Emulator, QUIRKS, parseQuirks, type Quirk, type EmulatorOptions, type RunningEmulator } from './server.js';
export type { OneShotFault } from './faults.js';
export { FaultInjector, parseFaultSpec, makePrng } from './faults.js';
export { CERT_DNS_NAMES, CERT_IPS } from './tls.js';
