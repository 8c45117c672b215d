import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as ts from 'typescript';

const root = path.resolve(__dirname, '..', '..');

/** The README's example blocks, as runnable CommonJS importing this build. */
function examples(): string[] {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  return [...readme.matchAll(/<!-- example[^>]*-->\s*```ts\n([\s\S]*?)```/g)].map((m) =>
    ts.transpileModule(m[1], { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText
      .replace(/require\("adafilter"\)/, `require(${JSON.stringify(path.join(root, 'dist', 'src', 'index.js'))})`));
}

function run(js: string, cwd: string) {
  return spawnSync(process.execPath, ['-e', js], { encoding: 'utf8', cwd });
}

test('the README has its two examples', () => {
  assert.equal(examples().length, 2);
});

test('README example 1: fine-tunes the shipped backbone with AdaFilter; rerunning returns the finished run', () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'adafilter-readme-'));
  try {
    const r = run(examples()[0], cwd);
    assert.equal(r.status, 0, r.stderr);
    const m = /test accuracy (\d\.\d+), fine-tuned filters (\d\.\d+)/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.ok(Number(m[1]) > 0.2, `better than chance (0.2) on 5 classes: ${m[1]}`);
    assert.ok(Number(m[2]) >= 0 && Number(m[2]) <= 1);
    assert.ok(fs.existsSync(path.join(cwd, 'runs', 'readme-example', 'result.json')));
    const again = run(examples()[0], cwd);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(/test accuracy (\d\.\d+)/.exec(again.stdout)?.[1], m[1]);
  } finally {
    fs.rmSync(cwd, { recursive: true, force: true });
  }
});

test('README example 2: the engine on its own; its loss goes down', () => {
  const r = run(examples()[1], root);
  assert.equal(r.status, 0, r.stderr);
  const losses = [...r.stdout.matchAll(/loss (\d+\.\d+)/g)].map((m) => Number(m[1]));
  assert.equal(losses.length, 3);
  assert.ok(losses[2] < losses[0], `loss falls: ${losses.join(' -> ')}`);
});
