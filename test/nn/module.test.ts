import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn } from '../../src/engine/random';
import { noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { InputError } from '../../src/errors';
import { buildModel } from '../../src/models/registry';
import { Sequential } from '../../src/nn/sequential';
import { Linear } from '../../src/nn/linear';
import { ReLU } from '../../src/nn/basic';
import { SmallCnn } from '../helpers/small-cnn';

test('parameters and buffers are found by attribute with PyTorch-style names', () => {
  const m = new SmallCnn();
  assert.deepEqual(m.namedParameters().map(([k]) => k),
    ['conv1.weight', 'bn1.weight', 'bn1.bias', 'conv2.weight', 'conv2.bias', 'fc.weight', 'fc.bias']);
  assert.deepEqual(m.namedBuffers().map(([k]) => k), ['bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked']);
  const seq = new Sequential(new Linear(2, 3), new ReLU(), new Linear(3, 1));
  assert.deepEqual(seq.namedParameters().map(([k]) => k), ['0.weight', '0.bias', '2.weight', '2.bias']);
});

test('resnet20 has torchvision names and the published parameter count', () => {
  const m = buildModel('resnet20', 10);
  const names = m.namedParameters().map(([k]) => k);
  assert.ok(names.includes('layer2.0.downsample.0.weight'));
  assert.ok(names.includes('layer3.2.bn2.bias'));
  const count = m.parameters().reduce((n, p) => n + p.numel, 0);
  assert.equal(count, 272474); // He et al. 2016 report 0.27M; the PyTorch peer counts 272,474
  m.dispose();
});

test('stateDict round trip reproduces outputs exactly', () => {
  manualSeed(3);
  const a = new SmallCnn();
  const x = randn([2, 3, 8, 8]);
  // Train mode once so the running statistics are not at their initial values.
  tidy(() => { a.forward(x); });
  a.eval();
  const b = new SmallCnn().eval();
  const before = noGrad(() => tidy(() => [a.forward(x).toArray(), b.forward(x).toArray()]));
  assert.notDeepEqual(before[0], before[1]);
  b.loadStateDict(a.stateDict());
  const after = noGrad(() => tidy(() => b.forward(x).toArray()));
  assert.deepEqual(after, before[0]);
  assert.equal(b.bn1.num_batches_tracked.item(), 1);
});

test('loadStateDict names missing, unexpected and mis-shaped entries', () => {
  const a = new SmallCnn();
  const sd = a.stateDict();
  sd.delete('fc.bias');
  sd.set('extra.weight', randn([1]));
  assert.throws(() => new SmallCnn().loadStateDict(sd), (e: Error) =>
    e instanceof InputError && /missing fc\.bias/.test(e.message) && /unexpected extra\.weight/.test(e.message));
  const bad = a.stateDict();
  bad.set('fc.weight', randn([5, 16]));
  assert.throws(() => new SmallCnn().loadStateDict(bad), /'fc.weight' has shape \[5,16\], the model expects \[4,16\]/);
});

test('freeze stops gradients; train/eval switch every submodule', () => {
  const m = new SmallCnn();
  m.conv1.freeze();
  tidy(() => m.forward(randn([2, 3, 8, 8])).sum().backward());
  assert.equal(m.conv1.weight.grad, null);
  assert.notEqual(m.fc.weight.grad, null);
  m.eval();
  assert.ok(m.modules().every((x) => !x.training));
  m.train();
  assert.ok(m.modules().every((x) => x.training));
});

test("to('channels_last') changes strides in place and keeps outputs and optimizer identity", () => {
  manualSeed(4);
  const m = new SmallCnn().eval();
  const x = randn([2, 3, 8, 8]);
  const w = m.conv1.weight;
  const before = noGrad(() => tidy(() => m.forward(x).toArray()));
  m.to('channels_last');
  assert.equal(m.conv1.weight, w);
  assert.deepEqual(w.strides, [27, 1, 9, 3]);
  assert.equal(w.requiresGrad, true);
  const after = noGrad(() => tidy(() => m.forward(x.contiguous('channels_last')).toArray()));
  after.forEach((v, i) => assert.ok(Math.abs(v - before[i]) < 1e-5));
});
