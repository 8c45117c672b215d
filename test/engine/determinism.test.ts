import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn, randint } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { tidy } from '../../src/engine/scope';
import { crossEntropy, dropout } from '../../src/nn/functional';
import { SGD } from '../../src/optim/sgd';
import { SmallCnn } from '../helpers/small-cnn';

function run(seed: number): number[] {
  setNumThreads(2);
  manualSeed(seed);
  const model = new SmallCnn();
  const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
  const losses: number[] = [];
  for (let i = 0; i < 30; i++) {
    losses.push(tidy(() => {
      const x = randn([8, 3, 16, 16]);
      const y = randint(0, 4, [8]);
      opt.zeroGrad();
      const loss = crossEntropy(dropout(model.forward(x), 0.2, true), y);
      loss.backward();
      opt.step();
      return loss.item();
    }));
  }
  model.dispose();
  return losses;
}

test('same seed gives bit-identical losses; another seed does not', () => {
  const a = run(7);
  const b = run(7);
  assert.deepEqual(a, b);
  const c = run(8);
  assert.notDeepEqual(a, c);
});
