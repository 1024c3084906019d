// Build the dashboard: copy the sources and the charting library into one
// folder that vpxd serves at /ui/.  Usage: node build.mjs [OUTDIR]
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] || join(here, 'dist');
const version = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8')).version;

mkdirSync(join(out, 'vendor'), { recursive: true });
for (const f of readdirSync(join(here, 'src'))) {
  let text = readFileSync(join(here, 'src', f), 'utf8');
  text = text.replaceAll('@KVC_UI_VERSION@', version);
  writeFileSync(join(out, f), text);
}
// chart.js exports no subpath for its UMD bundle; it sits in dist/.
const chart = join(here, 'node_modules', 'chart.js', 'dist', 'chart.umd.js');
copyFileSync(chart, join(out, 'vendor', 'chart.umd.js'));
console.log(`dashboard built into ${out}`);
