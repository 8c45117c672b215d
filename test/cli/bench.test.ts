import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const cli = path.resolve(__dirname, '..', '..', '..', 'bin', 'adafilter.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

test('bench throughput --json reports both contenders and their ratios', () => {
  const r = run('bench', 'throughput', '--arch', 'resnet20', '--batch', '4', '--threads', '1',
    '--steps', '1', '--rounds', '1', '--warmup', '0', '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.arch, 'resnet20');
  assert.equal(j.batch, 4);
  assert.equal(j.threads, 1);
  for (const side of [j.adafilter, j.pytorch]) {
    assert.ok(side.forward_img_s > 0 && side.train_img_s > 0);
  }
  assert.ok(Math.abs(j.train_ratio - j.adafilter.train_img_s / j.pytorch.train_img_s) < 1e-9);
  assert.ok(Math.abs(j.forward_ratio - j.adafilter.forward_img_s / j.pytorch.forward_img_s) < 1e-9);
  // Both sides build the same network: our FLOP count equals the peer's hook-based one.
  assert.equal(j.forward_gflop, j.pytorch.forward_gflop);
  assert.match(j.machine.libtorch, /^1\.13|^2\./);
});

test('bench throughput --method compares a method with finetune on the same backbone', () => {
  const r = run('bench', 'throughput', '--method', 'adafilter', '--batch', '4', '--threads', '1',
    '--steps', '1', '--rounds', '1', '--warmup', '0', '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.method.method, 'adafilter');
  assert.equal(j.baseline.method, 'finetune');
  assert.ok(Math.abs(j.train_cost_ratio - j.baseline.train_img_s / j.method.train_img_s) < 1e-9);
  // AdaFilter holds a frozen and a trainable copy of each gated filter plus the gate network.
  assert.ok(j.method.params_total > j.baseline.params_total);
});

test('bad input: one line on stderr and exit code 2', () => {
  const cases: [string[], RegExp][] = [
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['bench', 'nothing'], /unknown benchmark 'nothing'/],
    [['bench', 'throughput', '--arch', 'vgg99', '--no-peer'], /unknown architecture 'vgg99'/],
    [['bench', 'throughput', '--batch', 'lots'], /--batch: expected an integer >= 1, got 'lots'/],
    [['bench', 'throughput', '--bogus'], /Unknown option '--bogus'/],
    [['bench', 'throughput', '--method', 'nope'], /unknown method 'nope'/],
  ];
  for (const [args, message] of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
  }
});

test('--help prints usage and exits 0', () => {
  const r = run('bench', '--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /adafilter bench throughput/);
});
