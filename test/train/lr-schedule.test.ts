/** The trainer's learning rate per step: cosine from --lr to 0 over the run's steps (optim/schedule.ts), or constant. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { fineTune } from '../../src';
import { readLog } from '../../src/train/run-folder';
import { SMALL_API, tmpDir } from './helpers';

// 3 classes × 6 shots, batch 8: 3 steps per epoch; the log's lr is the one of each epoch's last step.
const FAST = { ...SMALL_API, method: 'linear-probe', augment: false, lr: 0.05, epochs: 4 };

test('cosine: each logged lr is lr·(1 + cos(π·t/T))/2 at the epoch\'s last step t, bit for bit; constant stays lr', async () => {
  const dir = tmpDir('lr');
  await fineTune({ ...FAST, schedule: 'cosine', out: path.join(dir, 'cos') });
  const log = readLog(path.join(dir, 'cos'));
  const total = log.reduce((s, l) => s + l.steps, 0);
  assert.equal(log.length, 4);
  let t = 0;
  for (const l of log) {
    t += l.steps;
    assert.equal(l.lr, 0.05 * ((1 + Math.cos(Math.PI * (t - 1) / total)) / 2), `epoch ${l.epoch}`);
  }
  assert.ok(log[0].lr < 0.05 && log[3].lr < log[2].lr && log[3].lr > 0, 'it decays and has not reached 0 at the last step');
  await fineTune({ ...FAST, schedule: 'constant', out: path.join(dir, 'const') });
  assert.deepEqual(readLog(path.join(dir, 'const')).map((l) => l.lr), [0.05, 0.05, 0.05, 0.05]);
});
