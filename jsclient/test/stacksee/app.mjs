// Helpers for the @stacksee/analytics provider tests: a project directory
// that depends on crumbs-jsclient and @stacksee/analytics the way an app
// does (through their package exports), and esbuild bundles made from it.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import { jsclient } from '../e2e/harness.mjs'

/** A temporary app project; close() removes it. */
export function project() {
  const dir = mkdtempSync(join(tmpdir(), 'crumbs-stacksee-'))
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(jsclient, join(dir, 'node_modules/crumbs-jsclient'), 'dir')
  symlinkSync(join(jsclient, 'node_modules/@stacksee'), join(dir, 'node_modules/@stacksee'), 'dir')
  writeFileSync(join(dir, 'package.json'), '{"name":"app","private":true,"type":"module"}\n')
  return {
    dir,
    /** Writes a file of the app. */
    write(name, text) {
      writeFileSync(join(dir, name), text)
      return join(dir, name)
    },
    /**
     * Bundles entry for the browser as a bundler of an app would (esbuild,
     * platform browser); answers the code, or throws the build errors.
     * posthog-js, which @stacksee/analytics loads only for its PostHog
     * provider, stays an external dynamic import.
     */
    async bundle(entry) {
      const out = await build({
        entryPoints: [join(dir, entry)],
        absWorkingDir: dir,
        bundle: true,
        write: false,
        format: 'esm',
        platform: 'browser',
        target: 'es2020',
        external: ['posthog-js'],
        logLevel: 'silent',
      })
      return out.outputFiles[0].text
    },
    close: () => rmSync(dir, { recursive: true, force: true }),
  }
}
