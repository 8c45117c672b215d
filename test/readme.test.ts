import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as ts from 'typescript';

test('the README API example compiles and runs, and its loss goes down', () => {
  const root = path.resolve(__dirname, '..', '..');
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const block = /<!-- example[^>]*-->\s*```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'README has an example block');
  const js = ts.transpileModule(block[1], { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText
    .replace(/require\("adafilter"\)/, `require(${JSON.stringify(path.join(root, 'dist', 'src', 'index.js'))})`);
  const r = spawnSync(process.execPath, ['-e', js], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const losses = [...r.stdout.matchAll(/loss (\d+\.\d+)/g)].map((m) => Number(m[1]));
  assert.equal(losses.length, 3);
  assert.ok(losses[2] < losses[0], `loss falls: ${losses.join(' -> ')}`);
});
