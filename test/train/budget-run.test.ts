/** The step budget in real runs: what run.json records, where validations land, and resume across unvalidated epochs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fineTune } from '../../src';
import { Interrupted } from '../../src/train/trainer';
import { readLog, readRunConfig } from '../../src/train/run-folder';
import { trainingBudget } from '../../src/train/budget';
import { SMALL_API, tmpDir } from './helpers';

// 3 classes × 6 shots = 18 training images, batch 8: 3 steps per epoch.
const FAST = { ...SMALL_API, method: 'linear-probe', augment: false };

test('--steps: the last epoch is cut short; run.json records the budget; the log has one line per validation', async () => {
  const dir = path.join(tmpDir('steps'), 'run');
  const r = await fineTune({ ...FAST, steps: 7, out: dir });
  const cfg = readRunConfig(dir);
  assert.deepEqual([cfg.steps, cfg.epochs, cfg.validateEvery], [7, 3, 1]);
  assert.match(cfg.budgetRule!, /^--steps 7 → 7 steps, 3 epochs/);
  assert.deepEqual(readLog(dir).map((l) => [l.epoch, l.steps]), [[1, 3], [2, 3], [3, 1]]);
  assert.equal(r.epochs, 3);
});

test('many short epochs: validation every validateEvery epochs and after the last; a stop between validations resumes exactly', async () => {
  const base = tmpDir('stride');
  const epochs = 45;
  const b = trainingBudget({ trainSize: 18, batch: 8, epochs });
  assert.equal(b.validateEvery, 2);
  const whole = path.join(base, 'whole');
  const r0 = await fineTune({ ...FAST, epochs, out: whole });
  const validated = readLog(whole).map((l) => l.epoch);
  assert.deepEqual(validated, [...Array.from({ length: 22 }, (_, i) => 2 * (i + 1)), 45]);
  assert.ok(validated.includes(r0.bestEpoch), 'the best epoch is a validated one');

  // Stop at the end of epoch 5 (not validated): the checkpoint is written there, and resume continues.
  const stopped = path.join(base, 'stopped');
  const ac = new AbortController();
  await assert.rejects(fineTune({ ...FAST, epochs, out: stopped, signal: ac.signal,
    onEvent: (e) => { if (e.type === 'step' && e.epoch === 4 && e.step === 3) ac.abort(); } }), Interrupted);
  assert.deepEqual(readLog(stopped).map((l) => l.epoch), [2, 4]);
  const r1 = await fineTune({ ...FAST, epochs, out: stopped, resume: true });
  assert.ok(fs.readFileSync(path.join(whole, 'model.safetensors')).equals(fs.readFileSync(path.join(stopped, 'model.safetensors'))), 'same best weights');
  const strip = (d: string) => readLog(d).map(({ seconds: _s, imagesPerSec: _i, time: _t, ...rest }) => rest);
  assert.deepEqual(strip(stopped), strip(whole));
  assert.deepEqual(r1.test, r0.test);
});

test('no --epochs or --steps: the default budget (max(500 steps, 10 epochs)) decides', async () => {
  const dir = path.join(tmpDir('default-budget'), 'run');
  const b = trainingBudget({ trainSize: 18, batch: 8 });
  const r = await fineTune({ ...FAST, out: dir });
  const cfg = readRunConfig(dir);
  assert.deepEqual([cfg.steps, cfg.epochs], [b.steps, b.epochs]);
  assert.ok(cfg.steps! >= 500);
  assert.equal(readLog(dir).length, b.validations);
  assert.equal(r.epochs, b.epochs);
});
