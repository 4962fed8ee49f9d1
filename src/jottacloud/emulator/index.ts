/** Loopback Jottacloud emulator (library entry point). */
export { startEmulator, Emulator, type EmulatorOptions, type RunningEmulator } from './server.js';
export type { OneShotFault } from './faults.js';
export { parseFaultSpec, makePrng } from './faults.js';
export { CERT_DNS_NAMES, CERT_IPS } from './tls.js';
