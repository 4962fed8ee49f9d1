/**
 * URL of a worker-thread module that sits next to the calling module (both two levels below the
 * project root: src/<dir>/<file>). Under vitest the caller is loaded from src/*.ts, and workers
 * must run the compiled JavaScript in dist/.
 */
export function workerModuleUrl(callerUrl: string, srcPath: string): URL {
  const base = srcPath.slice(srcPath.lastIndexOf('/') + 1);
  return callerUrl.endsWith('.ts') ? new URL(`../../dist/src/${srcPath}.js`, callerUrl) : new URL(`./${base}.js`, callerUrl);
}
