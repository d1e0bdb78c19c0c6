// Builds the page into token_server/static (or the directory given as the first argument):
// one minified JS bundle and index.html. Same inputs, same bytes: the tests compare them.
// The bundle ends with the licence texts of the npm packages it contains.
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(process.argv[2] ?? join(here, '..', 'token_server', 'static'));

function packageDir(input) {
  const match = /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  return match ? join(here, 'node_modules', match[1]) : null;
}

// A package's pre-bundled dist carries its dependencies' code, so their licences count too.
async function withDependencies(dirs) {
  const seen = new Set();
  const queue = [...dirs];
  while (queue.length) {
    const dir = queue.pop();
    if (seen.has(dir)) continue;
    seen.add(dir);
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
    for (const name of Object.keys(pkg.dependencies ?? {})) queue.push(join(here, 'node_modules', name));
  }
  return [...seen].sort();
}

async function licenceNotice(inputs) {
  const dirs = await withDependencies(new Set(inputs.map(packageDir).filter(Boolean)));
  const parts = [];
  for (const dir of dirs) {
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
    const file = (await readdir(dir)).sort().find((name) => /^(licen[cs]e|copying)/i.test(name));
    const text = file ? (await readFile(join(dir, file), 'utf8')).trim() : `Licence: ${pkg.license}`;
    parts.push(`${pkg.name} ${pkg.version} (${pkg.license})\n\n${text}`);
  }
  const body = parts.join('\n\n----------------------------------------\n\n').replaceAll('*/', '* /');
  return `\n/*! Third-party software in this bundle:\n\n${body}\n*/\n`;
}

await mkdir(outdir, { recursive: true });
const result = await build({
  entryPoints: [join(here, 'src', 'main.js')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  platform: 'browser',
  legalComments: 'none',
  sourcemap: false,
  metafile: true,
  write: false,
  absWorkingDir: here,
  logLevel: 'warning',
});
const [output] = result.outputFiles;
const notice = await licenceNotice(Object.keys(result.metafile.inputs));
await writeFile(join(outdir, 'app.js'), output.text + notice);
await copyFile(join(here, 'src', 'index.html'), join(outdir, 'index.html'));
console.log(`built ${outdir}`);
