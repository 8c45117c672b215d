import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isInputError } from '../../src/errors';
import { DEFAULT_EPOCHS, MIN_STEPS, trainingBudget } from '../../src/train/budget';

test('default budget: the step floor on small sets, whole epochs, ≥ 20 validation points', () => {
  // [training images, batch] → [steps, epochs, steps per epoch, validate every, validations]
  const cases: [number, number, number, number, number, number, number][] = [
    [10, 32, 500, 500, 1, 25, 20],      // 5 classes × 2 shots: one batch per epoch, 500 epochs
    [50, 32, 500, 250, 2, 12, 21],      // 5 × 10 photos (issue 14): 2 steps per epoch
    [100, 32, 500, 125, 4, 6, 21],      // digits at 10 shots: was 40 steps, now 500
    [1000, 32, 512, 16, 32, 1, 16],     // 500 rounded up to whole epochs of 32
    [60000, 32, 18750, 10, 1875, 1, 10], // large sets keep 10 epochs
    [33, 8, 500, 100, 5, 5, 20],
  ];
  for (const [n, batch, steps, epochs, spe, every, points] of cases) {
    const b = trainingBudget({ trainSize: n, batch });
    assert.deepEqual([b.steps, b.epochs, b.stepsPerEpoch, b.validateEvery, b.validations], [steps, epochs, spe, every, points], `${n} images, batch ${batch}`);
    assert.equal(b.lastEpochSteps, spe);
    assert.ok(b.steps >= MIN_STEPS && b.steps >= DEFAULT_EPOCHS * spe);
    assert.match(b.rule, /default: max\(500 steps, 10 epochs\)/);
    // The whole run's validations land on epochs every..epochs: never fewer than 20 unless every epoch is one.
    assert.ok(b.validations >= Math.min(20, b.epochs));
  }
});

test('--steps and --epochs: exactly what was asked; a partial last epoch for steps', () => {
  const s = trainingBudget({ trainSize: 100, batch: 32, steps: 10 });
  assert.deepEqual([s.steps, s.epochs, s.stepsPerEpoch, s.lastEpochSteps, s.validateEvery, s.validations], [10, 3, 4, 2, 1, 3]);
  assert.match(s.rule, /^--steps 10 → 10 steps, 3 epochs/);
  const e = trainingBudget({ trainSize: 100, batch: 32, epochs: 40 });
  assert.deepEqual([e.steps, e.epochs, e.lastEpochSteps, e.validateEvery, e.validations], [160, 40, 4, 2, 20]);
  const long = trainingBudget({ trainSize: 100, batch: 32, epochs: 41 });
  assert.deepEqual([long.validateEvery, long.validations], [2, 21]); // 2, 4, …, 40 and the last, 41
  const dropped = trainingBudget({ trainSize: 100, batch: 32, epochs: 2, dropLast: true });
  assert.equal(dropped.steps, 6);
});

test('bad budgets are InputErrors', () => {
  for (const o of [
    { trainSize: 100, batch: 32, steps: 10, epochs: 2 }, { trainSize: 100, batch: 32, steps: 0 }, { trainSize: 100, batch: 32, epochs: 1.5 },
    { trainSize: 0, batch: 32 }, { trainSize: 10, batch: 32, dropLast: true }, { trainSize: 10, batch: 0 },
  ]) assert.throws(() => trainingBudget(o), (e) => isInputError(e), JSON.stringify(o));
});
