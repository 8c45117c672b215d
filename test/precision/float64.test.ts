/**
 * With float64 inputs and a float64 model, every method computes in float64 throughout: no tensor
 * made during its forward pass and loss is of another floating dtype, and every gradient is float64.
 * A tensor created mid-forward without following its input (zeros() instead of x's dtype) shows here;
 * it is the same code path that puts tensors on the right device.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, watchTensors } from '../../src/engine/tensor';
import { isFloating } from '../../src/engine/dtype';
import { manualSeed, randint, randn } from '../../src/engine/random';
import { zeros } from '../../src/engine/creation';
import { setNumThreads } from '../../src/engine/runtime';
import { tidy } from '../../src/engine/scope';
import { applyMethod, methodNames } from '../../src/methods/registry';
import { fakePretrained } from '../methods/helpers';
import { calibrationBatches } from './helpers';

setNumThreads(1);

/** Where a tensor was made: the first stack frame outside the engine. */
function maker(): string {
  const frames = (new Error().stack ?? '').split('\n').slice(1).map((l) => l.trim());
  return frames.find((f) => !/[/\\]engine[/\\]/.test(f) && !f.includes('float64.test')) ?? frames[0] ?? '?';
}

/** Runs fn and returns it with a description of every floating tensor it made that is not float64. */
function notFloat64<T>(fn: () => T): [T, string[]] {
  const wrong: string[] = [];
  const r = watchTensors(fn, (t: Tensor) => {
    const d = t.dtype;
    if (isFloating(d) && d !== 'float64' && wrong.length < 5) wrong.push(`${d} [${t.shape}] made ${maker()}`);
  });
  return [r, wrong];
}

test('the check sees a tensor made mid-forward in float32 even when the result is promoted back to float64', () => {
  const x = randn([2, 3], { dtype: 'float64' });
  tidy(() => {
    const [y, wrong] = notFloat64(() => x.add(zeros([2, 3])));
    assert.equal(y.dtype, 'float64', 'type promotion hides it in the result');
    assert.equal(wrong.length, 1);
    assert.match(wrong[0], /^float32 \[2,3\] made /);
    assert.deepEqual(notFloat64(() => x.add(zeros([2, 3], { dtype: x.dtype })))[1], [], 'the fix: follow the input');
  });
  x.dispose();
});

for (const method of methodNames()) {
  test(`${method}: a float64 model on float64 inputs makes only float64 tensors, forward and backward, training and evaluation`, async () => {
    manualSeed(0);
    const model = applyMethod(method, fakePretrained(0), 4);
    try {
      // gna groups its filters from fp32 training images first (as the trainer does).
      if (model.calibrate) await model.calibrate(calibrationBatches(6));
      model.to('float64');
      for (const [k, t] of model.stateDict()) {
        if (isFloating(t.dtype)) assert.equal(t.dtype, 'float64', `${k} after to('float64')`);
      }
      const x = randn([3, 3, 32, 32], { dtype: 'float64' });
      const y = randint(0, 4, [3]);
      for (const training of [true, false]) {
        model.train(training);
        manualSeed(1);
        tidy(() => {
          const [loss, wrong] = notFloat64(() => model.loss(model.run(x), y));
          assert.deepEqual(wrong, [], `${training ? 'training' : 'evaluation'} pass`);
          assert.equal(loss.dtype, 'float64');
          if (!training) return;
          loss.backward();
          const withGrad = model.namedParameters().filter(([, p]) => p.grad !== null);
          assert.ok(withGrad.length > 0, 'something has a gradient');
          for (const [k, p] of withGrad) assert.equal(p.grad!.dtype, 'float64', `gradient of ${k}`);
          for (const p of model.parameters()) p.grad = null;
        });
      }
      x.dispose(); y.dispose();
    } finally {
      model.dispose();
    }
  });
}
