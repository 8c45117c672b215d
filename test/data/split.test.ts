import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openDataset, openSource } from '../../src/data/registry';
import { makeSplits } from '../../src/data/split';
import { Rng } from '../../src/data/rng';
import { applyClassIndex, classIndexOf, readClassIndex, writeClassIndex } from '../../src/data/class-index';
import { InputError } from '../../src/errors';
import { tmpDir } from './helpers';

test('Rng: same seed, same stream; nearby seeds differ; int is in range and unbiased enough', () => {
  const a = new Rng(7, 1, 2), b = new Rng(7, 1, 2), c = new Rng(7, 1, 3);
  const sa = Array.from({ length: 100 }, () => a.u32());
  assert.deepEqual(sa, Array.from({ length: 100 }, () => b.u32()));
  assert.notDeepEqual(sa, Array.from({ length: 100 }, () => c.u32()));
  const counts = new Array(6).fill(0);
  const r = new Rng(1);
  for (let i = 0; i < 60000; i++) counts[r.int(6)]++;
  for (const n of counts) assert.ok(n > 9500 && n < 10500, `bucket ${n}`);
  const f = new Rng(2);
  for (let i = 0; i < 1000; i++) { const v = f.float(); assert.ok(v >= 0 && v < 1); }
});

test('splits: same seed → same split; other seed → other split; stratified and disjoint', async () => {
  const src = await openSource('quickdraw:0-19');
  const a = makeSplits(src, { seed: 5 }), b = makeSplits(src, { seed: 5 }), c = makeSplits(src, { seed: 6 });
  assert.deepEqual(a.splits, b.splits);
  assert.notDeepEqual(a.splits.test, c.splits.test);
  assert.equal(a.splits.test!.length, 20 * 20);
  assert.equal(a.splits.val!.length, 20 * 8);
  assert.equal(a.splits.train.length, 20 * 72);
  const seen = new Set<number>();
  for (const s of [a.splits.train, a.splits.val!, a.splits.test!]) for (const it of s) { assert.ok(!seen.has(it.index)); seen.add(it.index); }
  assert.equal(seen.size, 2000);
  for (let k = 0; k < 20; k++) assert.equal(a.splits.test!.filter((it) => it.label === k).length, 20);
});

test('shots: k per class from train, nested as k grows, test untouched', async () => {
  const src = await openSource('quickdraw:0-9');
  const five = makeSplits(src, { seed: 1, shots: 5 }), ten = makeSplits(src, { seed: 1, shots: 10 }), all = makeSplits(src, { seed: 1 });
  assert.equal(five.splits.train.length, 50);
  for (let k = 0; k < 10; k++) assert.equal(five.splits.train.filter((it) => it.label === k).length, 5);
  const tenIdx = new Set(ten.splits.train.map((it) => it.index));
  const allIdx = new Set(all.splits.train.map((it) => it.index));
  for (const it of five.splits.train) { assert.ok(tenIdx.has(it.index)); assert.ok(allIdx.has(it.index)); }
  assert.deepEqual(five.splits.test, all.splits.test);
  assert.throws(() => makeSplits(src, { shots: 1000 }), (e: unknown) => e instanceof InputError && /fewer than shots=1000/.test(e.message));
});

test('class subsets relabel in the given order, by name or index', async () => {
  const ds = await openDataset('mnist', { classes: ['7', 3], val: 0 });
  assert.deepEqual(ds.classes, ['7', '3']);
  const src = await openSource('mnist');
  const labelOf = new Map(src.splits.test!.map((it) => [it.index, it.label]));
  for (const it of ds.splits.test!) assert.equal(labelOf.get(it.index), it.label === 0 ? 7 : 3);
  assert.equal(ds.splits.train.length, 6265 + 6131);
  await assert.rejects(openDataset('mnist', { classes: ['7'] }), /at least 2 classes/);
  await assert.rejects(openDataset('mnist', { classes: ['7', 'x'] }), /unknown class 'x'/);
});

test('class index: write atomically, read back, relabel by name; bad files are InputErrors', async () => {
  const dir = tmpDir('classidx');
  const ds = await openDataset('quickdraw:cat,dog,fish', { seed: 0 });
  const file = path.join(dir, 'classes.json');
  writeClassIndex(file, classIndexOf(ds));
  assert.deepEqual(fs.readdirSync(dir), ['classes.json'], 'no temporary file left');
  const idx = readClassIndex(file);
  assert.deepEqual(idx.classes, ['cat', 'dog', 'fish']);
  // Evaluating on another dataset with the classes in another order: labels follow the names.
  const other = await openDataset('quickdraw:fish,cat', { seed: 0 });
  const re = applyClassIndex(other, idx);
  assert.deepEqual(re.classes, ['cat', 'dog', 'fish']);
  for (let i = 0; i < other.splits.train.length; i++) {
    assert.equal(re.classes[re.splits.train[i].label], other.classes[other.splits.train[i].label]);
  }
  const bird = await openDataset('quickdraw:cat,bird');
  assert.throws(() => applyClassIndex(bird, idx), /class 'bird' is not in the class index/);
  for (const [body, why] of [['{', /not valid JSON/], ['{"format":"x"}', /not an adafilter class index/],
    ['{"format":"adafilter-class-index","version":2,"dataset":"d","classes":["a","b"]}', /version 2/],
    ['{"format":"adafilter-class-index","version":1,"dataset":"d","classes":["a","a"]}', /twice/]] as const) {
    fs.writeFileSync(file, body);
    assert.throws(() => readClassIndex(file), (e: unknown) => e instanceof InputError && why.test(e.message));
  }
});
