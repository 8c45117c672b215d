import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn, randint } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { tidy } from '../../src/engine/scope';
import { liveTensors } from '../../src/engine/tensor';
import { crossEntropy } from '../../src/nn/functional';
import { SGD } from '../../src/optim/sgd';
import { SmallCnn } from '../helpers/small-cnn';

test('2000 training steps keep native tensors and resident memory flat', () => {
  setNumThreads(2);
  manualSeed(1);
  const model = new SmallCnn();
  const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
  const rss = () => process.memoryUsage().rss / 2 ** 20;
  const step = () => tidy(() => {
    // Fresh inputs each step, as a data loader would make them.
    const x = randn([8, 3, 16, 16]);
    const y = randint(0, 4, [8]);
    opt.zeroGrad();
    const loss = crossEntropy(model.forward(x), y);
    loss.backward();
    opt.step();
    return loss.item();
  });
  for (let i = 0; i < 200; i++) step();
  const liveAfterWarmup = liveTensors();
  const rssAfterWarmup = rss();
  const samples: number[] = [];
  for (let i = 200; i < 2000; i++) {
    const loss = step();
    assert.ok(Number.isFinite(loss));
    if (i % 300 === 0) samples.push(rss());
  }
  assert.equal(liveTensors(), liveAfterWarmup, 'no native tensor outlives its step');
  const growth = rss() - rssAfterWarmup;
  // A leak of one step's activations (~0.2 MB) per step would add hundreds of MB over 1800 steps.
  assert.ok(growth < 24, `resident memory grew by ${growth.toFixed(1)} MB (samples ${samples.map((s) => s.toFixed(0)).join(', ')})`);
  model.dispose();
});

test('tidy disposes intermediates but returns its result, even when fn throws', () => {
  const before = liveTensors();
  const kept = tidy(() => {
    const a = randn([4, 4]);
    const b = a.mul(2).add(1);
    return b.sum();
  });
  assert.equal(liveTensors(), before + 1);
  assert.throws(() => tidy(() => {
    randn([3]);
    throw new Error('boom');
  }), /boom/);
  assert.equal(liveTensors(), before + 1);
  kept.dispose();
  assert.equal(liveTensors(), before);
});

test('nested tidy hands the inner result to the outer scope', () => {
  const before = liveTensors();
  tidy(() => {
    const inner = tidy(() => randn([2]).add(1));
    assert.equal(inner.isDisposed, false);
    assert.equal(inner.shape[0], 2);
  });
  assert.equal(liveTensors(), before);
});

test('a resnet block releases its intermediates as it goes: an eval forward holds one tensor per block, not one per op', async () => {
  const { buildModel } = await import('../../src/models');
  const { noGrad } = await import('../../src/engine/autograd');
  setNumThreads(1);
  manualSeed(0);
  const model = buildModel('resnet20', 10);
  model.eval();
  const x = randn([2, 3, 32, 32]);
  // Live tensors after each block, inside one pass: before chain() every conv, BN, relu and add
  // output stayed alive to the end of the pass (about 8 per block).
  const growth: number[] = [];
  const layers = (model as unknown as { layers: { layers: { forward(t: unknown): unknown }[] }[] }).layers;
  const block = layers[1].layers[0]; // with a projection shortcut
  const forward = block.forward.bind(block);
  block.forward = (t: unknown) => { const before = liveTensors(); const y = forward(t); growth.push(liveTensors() - before); return y; };
  const plain = layers[0].layers[1];
  const forward2 = plain.forward.bind(plain);
  plain.forward = (t: unknown) => { const before = liveTensors(); const y = forward2(t); growth.push(liveTensors() - before); return y; };
  tidy(() => noGrad(() => { model.forward(x); }));
  assert.deepEqual(growth, [1, 2], 'identity block: its output only; projection block: its output and the shortcut conv\'s output (inside the Sequential)');
  x.dispose();
});
