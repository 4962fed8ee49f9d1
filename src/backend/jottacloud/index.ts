export { JottaBackend, type JottaBackendOptions } from './backend.js';
export { JottaClient, type Customer, type DriveInfo } from './client.js';
export { decodeLoginToken, discoverTokenEndpoint, passwordGrant, refreshGrant, TokenManager } from './auth.js';
export * from './accounts.js';
export * from './errors.js';
export { Http, type HttpOptions, type Logger } from './http.js';
export { encodeName, isJottaLocation, parseJottaLocation, type JottaSpec } from './spec.js';
