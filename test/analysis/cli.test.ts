/** `adafilter analyze similarity` end to end on two tiny runs, and its bad input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { SMALL, cli, tmpDir } from '../train/helpers';

const DATA = ['--data', 'quickdraw:300-302'];
const names = ['layer1.0', 'layer1.1', 'layer1.2', 'layer2.0', 'layer2.1', 'layer2.2', 'layer3.0', 'layer3.1', 'layer3.2'];

interface Layer { name: string; cka: number; ckaDebiased: number; svcca: number; widthA: number; widthB: number }

function analyze(...args: string[]): { layers: Layer[]; images: number } {
  const r = cli('analyze', 'similarity', ...args, ...DATA, '--threads', '1', '--json');
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('analyze similarity: a run against itself is 1 everywhere; against its own initial weights it has moved, a gated run compares by block name', () => {
  const base = tmpDir('analyze');
  const ft = path.join(base, 'ft'), af = path.join(base, 'af');
  for (const [m, dir] of [['finetune', ft], ['adafilter', af]]) {
    const r = cli('train', ...SMALL, '--method', m, '--epochs', '1', '--lr', '0.05', '--out', dir);
    assert.equal(r.status, 0, r.stderr);
  }
  const self = analyze(ft, ft);
  assert.deepEqual(self.layers.map((l) => l.name), names);
  assert.ok(self.images >= 4);
  for (const l of self.layers) {
    assert.ok(Math.abs(l.cka - 1) < 1e-9 && Math.abs(l.ckaDebiased - 1) < 1e-9, `${l.name}: CKA ${l.cka} / ${l.ckaDebiased} of a run with itself`);
  }
  const s = cli('analyze', 'similarity', ft, ft, ...DATA, '--threads', '1', '--metric', 'svcca', '--json');
  assert.equal(s.status, 0, s.stderr);
  for (const l of JSON.parse(s.stdout).layers as Layer[]) assert.ok(Math.abs(l.svcca - 1) < 1e-8, `${l.name}: SVCCA ${l.svcca}`);

  // `resnet20` with the run's seed is the random network the run started from.
  const moved = analyze('resnet20', ft);
  for (const l of moved.layers) assert.ok(l.cka > 0 && l.cka < 1 - 1e-6, `${l.name}: CKA ${l.cka} in (0, 1)`);
  assert.ok(moved.layers[0].cka > 0.9, `the first block barely moves in one short epoch (CKA ${moved.layers[0].cka})`);

  const gated = analyze(ft, af);
  assert.deepEqual(gated.layers.map((l) => l.name), names);
  assert.deepEqual(gated.layers.map((l) => l.widthB), [16, 16, 16, 32, 32, 32, 64, 64, 64]);
  for (const l of gated.layers) assert.ok(l.cka > 0 && l.cka <= 1 + 1e-12, `${l.name}: ${l.cka}`);

  const flat = cli('analyze', 'similarity', ft, ft, ...DATA, '--threads', '1', '--pool', 'flat', '--batch', '8', '--json');
  assert.equal(flat.status, 0, flat.stderr);
  const f = JSON.parse(flat.stdout);
  assert.equal(f.pool, 'flat');
  assert.ok(f.batches >= 1);
  assert.equal(f.layers[0].widthA, 16 * 32 * 32, 'every position of a 16×32×32 output');
  for (const l of f.layers as Layer[]) assert.ok(Math.abs(l.cka - 1) < 1e-9 && Math.abs(l.ckaDebiased - 1) < 1e-9, `${l.name} flat: ${l.cka} / ${l.ckaDebiased}`);
  const flatMoved = analyze('resnet20', ft, '--pool', 'flat', '--batch', '8');
  for (const l of flatMoved.layers) assert.ok(l.cka < 1 - 1e-9, `${l.name}: flattened outputs moved too`);

  const table = cli('analyze', 'similarity', ft, 'resnet20', ...DATA, '--threads', '1', '--layers', 'layer1.0,layer3.2');
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /^layer1\.0\s+16\/16\s+\d\.\d{4}\s+-?\d\.\d{4}$/m);
  assert.match(table.stdout, /^layer3\.2\s+64\/64/m);
  assert.doesNotMatch(table.stdout, /layer2\.0/);
});

test('analyze similarity: bad input is one line on stderr and exit 2', () => {
  const cases: [string[], RegExp][] = [
    [['similarity', 'resnet20', 'resnet20', ...DATA, '--metric', 'pearson'], /--metric: expected cka or svcca, got 'pearson'/],
    [['similarity', 'resnet20', 'resnet20'], /--data is required/],
    [['similarity', 'resnet20', 'resnet20', '--data', 'folder:/nonexistent/images'], /nonexistent/],
    [['similarity', 'resnet20', 'resnet32', ...DATA], /different blocks \(only in A: none; only in B: layer1\.3, .*--layers/],
    [['similarity', 'resnet20', 'resnet20', ...DATA, '--layers', 'layer9.9'], /layer 'layer9\.9' is not a block of resnet20/],
    [['similarity', 'resnet20', ...DATA], /expected two models A B/],
    [['similarity', 'resnet20', 'resnet99', ...DATA], /resnet99/],
    [['nearness', 'a', 'b', ...DATA], /unknown analysis 'nearness'/],
    [['similarity', 'resnet20', 'resnet20', ...DATA, '--split', 'test'], /--split: expected val or train/],
    [['similarity', 'resnet20', 'resnet20', ...DATA, '--pool', 'flat', '--metric', 'svcca'], /--pool flat works with --metric cka only/],
    [['similarity', 'resnet20', 'resnet20', ...DATA, '--pool', 'max'], /--pool: expected mean or flat/],
  ];
  for (const [args, re] of cases) {
    const r = cli('analyze', ...args, '--threads', '1');
    assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}, stderr ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }
});
