// Builds the page into token_server/static (or the directory given as the first argument):
// one minified JS bundle and index.html. Same inputs, same bytes: the tests compare them.
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(process.argv[2] ?? join(here, '..', 'token_server', 'static'));

await mkdir(outdir, { recursive: true });
await build({
  entryPoints: [join(here, 'src', 'main.js')],
  outfile: join(outdir, 'app.js'),
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  platform: 'browser',
  legalComments: 'eof',
  sourcemap: false,
  logLevel: 'warning',
});
await copyFile(join(here, 'src', 'index.html'), join(outdir, 'index.html'));
console.log(`built ${outdir}`);
