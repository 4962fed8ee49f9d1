/**
 * URL of a worker-thread module that sits next to the calling module (both two levels below the
 * project root: src/<dir>/<file>). Under vitest the caller is loaded from src/*.ts, and workers
 * must run the compiled JavaScript in dist/.
 */
export function workerModuleUrl(callerUrl: string, srcPath: string): URL {
  const base = srcPath.slice(srcPath.lastIndexOf('/') + 1);
  return callerUrl.endsWith('.ts') ? new URL(`../../dist/src/${srcPath}.js`, callerUrl) : new URL(`./${base}.js`, callerUrl);
}

/**
 * V8 limits for the byte-pipeline workers: their JavaScript allocates little besides messages
 * (the bytes live in ArrayBuffers outside the heap), so a young generation of 3 MiB (1 MiB
 * semi-spaces) is plenty; V8's default grows it to 48 MiB per isolate when allocation is busy.
 */
export const WORKER_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 3 };
