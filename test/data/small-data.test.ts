/**
 * Small folders (issue 14): carved splits give every class a validation and a test image when it
 * can spare them; when it cannot, or a class has fewer images than --shots, training stops with one
 * clear line — never a silent 1-image validation split.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { openDataset } from '../../src/data/registry';
import { checkTrainingSplits, makeSplits } from '../../src/data/split';
import { Dataset, Item } from '../../src/data/dataset';
import { isInputError } from '../../src/errors';
import { fineTune } from '../../src/train/trainer';
import { tmpDir, writeImage } from './helpers';
import { cli } from '../train/helpers';

/** A dataset of `counts[c]` items per class, no splits of its own (pixels never read). */
function fake(counts: number[]): Dataset {
  const train: Item[] = [];
  counts.forEach((n, c) => { for (let i = 0; i < n; i++) train.push({ index: train.length, label: c }); });
  return {
    name: 'fake', classes: counts.map((_, c) => `c${c}`), splits: { train }, imageSize: [8, 8], channels: 1, source: 'test', license: '-',
    storage: { kind: 'memory', pixels: new SharedArrayBuffer(train.length * 64), height: 8, width: 8, channels: 1 }, skipped: [],
  };
}

const perClass = (items: Item[] | undefined, k: number) => Array.from({ length: k }, (_, c) => (items ?? []).filter((it) => it.label === c).length);

test('carved splits: at least one validation and one test image per class that can spare them', () => {
  // 5 classes × 4 images: 10% val and 20% test round to 0 and 1 per class; now 1 and 1.
  const d = makeSplits(fake([4, 4, 4, 4, 4]), { seed: 0 });
  assert.deepEqual(perClass(d.splits.val, 5), [1, 1, 1, 1, 1]);
  assert.deepEqual(perClass(d.splits.test, 5), [1, 1, 1, 1, 1]);
  assert.deepEqual(perClass(d.splits.train, 5), [2, 2, 2, 2, 2]);
  checkTrainingSplits(d);
  // Large classes are carved as before: round(frac × n).
  const big = makeSplits(fake([100, 50]), { seed: 0 });
  assert.deepEqual(perClass(big.splits.test, 2), [20, 10]);
  assert.deepEqual(perClass(big.splits.val, 2), [8, 4]);
});

test('a class too small for validation, or a given val split with fewer images than classes: one clear InputError', () => {
  // Two images: one for test, one kept for training, none left for validation.
  const d = makeSplits(fake([10, 2, 10]), { seed: 0 });
  assert.equal(perClass(d.splits.val, 3)[1], 0);
  assert.throws(() => checkTrainingSplits(d), (e) => isInputError(e)
    && /2 validation images for 3 classes; no validation image of 'c1' \(2 images\)/.test((e as Error).message)
    && /at least 3 images/.test((e as Error).message) && !(e as Error).message.includes('\n'));
  // A source's own val split that misses classes.
  const given = fake([5, 5, 5]);
  given.splits.val = [{ index: 0, label: 0 }];
  given.splits.test = [{ index: 1, label: 1 }];
  given.splits.train = given.splits.train.slice(2);
  assert.throws(() => checkTrainingSplits(given), (e) => isInputError(e) && /1 validation image for 3 classes/.test((e as Error).message));
});

test('--shots above a class\'s training images: the message counts what val and test hold out', () => {
  assert.throws(() => makeSplits(fake([10, 10]), { seed: 0, shots: 10 }), (e) => isInputError(e)
    && /class 'c0' has 7 training examples \(3 more are held out for validation and test\), fewer than shots=10; lower --shots/.test((e as Error).message));
});

test('a folder with a 2-image class: train stops before writing anything, exit 2, one line', async () => {
  const dir = tmpDir('small');
  for (const [cls, n] of [['cat', 6], ['dog', 2]] as const) {
    for (let i = 0; i < n; i++) await writeImage(path.join(dir, 'data', cls, `${i}.png`), 'png', [40 * i, 100, cls === 'cat' ? 0 : 200]);
  }
  const ds = await openDataset(path.join(dir, 'data'), { seed: 0 });
  assert.throws(() => checkTrainingSplits(ds), (e) => isInputError(e) && /'dog' \(2 images\)/.test((e as Error).message));
  const out = path.join(dir, 'run');
  await assert.rejects(fineTune({ backbone: 'resnet20', data: path.join(dir, 'data'), epochs: 1, threads: 1, workers: 0, out }), (e) => isInputError(e));
  const r = cli('train', '--backbone', 'resnet20', '--data', path.join(dir, 'data'), '--epochs', '1', '--threads', '1', '--out', out);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /no validation image of 'dog'/);
});
