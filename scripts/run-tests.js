'use strict';
// Runs every compiled test file with node's test runner, one process per file (node --test's
// default), so a native crash in one file would show as that file failing, not a silent exit.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function find(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? find(p) : e.name.endsWith('.test.js') ? [p] : [];
  });
}

const root = path.resolve(__dirname, '..');
const filter = process.argv.slice(2);
let files = find(path.join(root, 'dist', 'test')).sort();
if (filter.length) files = files.filter((f) => filter.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
// Tests run one file at a time: libtorch's threads and the 2-core machines do not share well.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit', cwd: root });
process.exit(r.status === null ? 1 : r.status);
