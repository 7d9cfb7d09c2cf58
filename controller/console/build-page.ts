// `npm run build:console`: bundles the console's page (controller/console/page/, Preact + uPlot) with
// esbuild into page/dist/console.js and console.css, which the console serves. A build tool, run by
// `npm test`, `npm run demo` and the Dockerfile's build stage; the controller itself never imports it
// (esbuild, Preact and uPlot are devDependencies). About 0.1-0.3 s.
import path from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';
import { PAGE_DIST } from './console-server.ts';

export interface PageBuild {
  bytes: { js: number; css: number };
  ms: number;
}

export async function buildConsolePage(opts: { minify?: boolean } = {}): Promise<PageBuild> {
  const t0 = performance.now();
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: { console: path.join(import.meta.dirname, 'page', 'main.tsx') },
    outdir: PAGE_DIST,
    bundle: true,
    minify: opts.minify ?? true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
    // semver reads process.env.NODE_DEBUG behind a typeof check; nothing else of Node is used.
    define: { 'process.env.NODE_DEBUG': 'undefined' },
  });
  const out = result.metafile.outputs;
  const size = (name: string): number => Object.entries(out).find(([f]) => f.endsWith(name))?.[1].bytes ?? 0;
  return { bytes: { js: size('console.js'), css: size('console.css') }, ms: Math.round(performance.now() - t0) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  buildConsolePage().then(
    (b) => process.stdout.write(`console page built in ${b.ms} ms: console.js ${b.bytes.js} bytes, console.css ${b.bytes.css} bytes (${PAGE_DIST})\n`),
    (err: Error) => {
      process.stderr.write(`build:console: ${err.message}\n`);
      process.exitCode = 1;
    },
  );
}
