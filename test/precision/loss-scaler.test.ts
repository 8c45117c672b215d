/**
 * fp16's loss scaling, checked on the CPU in fp32 (the rule does not depend on the dtype): a scaled
 * step is the unscaled step bit for bit (powers of two), an overflow skips the step and halves the
 * scale, clean steps double it after the interval, and a restored state continues identically.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randint, randn } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { tidy } from '../../src/engine/scope';
import { noGrad } from '../../src/engine/autograd';
import { Tensor } from '../../src/engine/tensor';
import { crossEntropy } from '../../src/nn/functional';
import { SGD } from '../../src/optim/sgd';
import { LossScaler } from '../../src/train/loss-scaler';
import { SmallCnn } from '../helpers/small-cnn';

setNumThreads(1);

function setup() {
  manualSeed(0);
  const model = new SmallCnn();
  const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
  return { model, opt };
}

const x = randn([4, 3, 8, 8]);
const y = randint(0, 4, [4]);
const weights = (m: SmallCnn) => m.parameters().map((p) => Array.from(p.toFloat32Array()));

/** One step; with a scaler, through it. `poison` makes one gradient infinite. Returns whether it stepped. */
function step(model: SmallCnn, opt: SGD, scaler: LossScaler | null, poison = false): boolean {
  return tidy(() => {
    opt.zeroGrad();
    const loss = crossEntropy(model.forward(x), y);
    (scaler ? scaler.scaled(loss) : loss).backward();
    if (poison) noGrad(() => model.fc.bias!.grad!.fill_(Infinity));
    if (!scaler) { opt.step(); return true; }
    return scaler.step(opt);
  });
}

test('steps through the scaler equal plain steps bit for bit (the scale is a power of two)', () => {
  const a = setup(), b = setup();
  const scaler = new LossScaler({ initScale: 2 ** 12 });
  for (let i = 0; i < 3; i++) {
    step(a.model, a.opt, null);
    assert.equal(step(b.model, b.opt, scaler), true);
  }
  assert.deepEqual(weights(b.model), weights(a.model));
  assert.deepEqual(scaler.state, { scale: 2 ** 12, growthTracker: 3 });
});

test('an overflowing step is skipped (weights and momentum untouched) and halves the scale; clean steps double it after the interval', () => {
  const { model, opt } = setup();
  const scaler = new LossScaler({ initScale: 2 ** 10, growthInterval: 2 });
  assert.equal(step(model, opt, scaler), true);
  const before = weights(model);
  const momentum = opt.stateDict().state.map((s) => Array.from((s.momentum_buffer as Tensor).toFloat32Array()));
  assert.equal(step(model, opt, scaler, true), false);
  assert.deepEqual(weights(model), before, 'weights unchanged');
  assert.deepEqual(opt.stateDict().state.map((s) => Array.from((s.momentum_buffer as Tensor).toFloat32Array())), momentum, 'momentum unchanged');
  assert.deepEqual(scaler.state, { scale: 2 ** 9, growthTracker: 0 });
  step(model, opt, scaler);
  assert.deepEqual(scaler.state, { scale: 2 ** 9, growthTracker: 1 });
  step(model, opt, scaler);
  assert.deepEqual(scaler.state, { scale: 2 ** 10, growthTracker: 0 }, 'doubled after 2 clean steps');
});

test('a scaler built from a saved state continues exactly as the original', () => {
  const a = new LossScaler({ growthInterval: 3 });
  const { model, opt } = setup();
  step(model, opt, a); step(model, opt, a, true); step(model, opt, a);
  const b = new LossScaler({ growthInterval: 3 }, a.state);
  for (const s of [a, b]) { step(model, opt, s); step(model, opt, s); }
  assert.deepEqual(b.state, { scale: 2 ** 16, growthTracker: 0 });
  assert.deepEqual(a.state, b.state);
});
