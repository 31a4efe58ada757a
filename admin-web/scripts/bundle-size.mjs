// Prints the built console's size, gzipped: what the first page loads (index.html, its
// script and stylesheet, and the modules they preload) and everything under dist/.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

const dist = path.resolve(import.meta.dirname, '../dist');
const gz = (file) => gzipSync(readFileSync(path.join(dist, file)), { level: 9 }).length;
const html = readFileSync(path.join(dist, 'index.html'), 'utf8');
const first = ['index.html', ...[...html.matchAll(/(?:src|href)="\/console\/([^"]+)"/g)].map((m) => m[1])];
const all = readdirSync(path.join(dist, 'assets')).map((f) => `assets/${f}`).concat('index.html');
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;
const firstBytes = first.reduce((sum, f) => sum + gz(f), 0);
const allBytes = all.reduce((sum, f) => sum + gz(f), 0);
for (const f of first) console.log(`  first page: ${f} ${kb(gz(f))}`);
console.log(`first page (gzip): ${kb(firstBytes)}`);
console.log(`total (gzip): ${kb(allBytes)} in ${all.length} files`);
