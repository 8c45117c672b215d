import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn } from '../../src/engine/random';
import { noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { setNumThreads } from '../../src/engine/runtime';
import { buildModel, modelNames, modelSpec } from '../../src/models/registry';
import { ResNet, BasicBlock, Bottleneck } from '../../src/models/resnet';
import { MobileNetV2, makeDivisible } from '../../src/models/mobilenetv2';
import { Conv2d } from '../../src/nn/conv';
import { BatchNorm2d } from '../../src/nn/batchnorm';
import { Identity } from '../../src/nn/basic';
import { Module } from '../../src/nn/module';
import { Tensor } from '../../src/engine/tensor';
import { InputError } from '../../src/errors';

setNumThreads(1);

// Parameter counts at 1000 classes; torchvision 0.14 counts for its models (checked with
// sum(p.numel() for p in tvm.X().parameters())). The CIFAR ResNets by hand: 3×3 convs with BN
// (2 parameters per channel), a 1×1 projection with BN where a stage changes width, and the fc.
const COUNTS: Record<string, number> = {
  resnet18: 11689512, resnet34: 21797672, resnet50: 25557032,
  mobilenetv2: 3504872, 'mobilenetv2-0.75': 2636424, 'mobilenetv2-0.5': 1968680, 'mobilenetv2-0.35': 1677128,
  resnet20: 336824, 'resnet20-w2': 1212296, 'resnet18-cifar': 11681832, resnet26: 6115080,
};

test('the registry keeps the old names and knows the new ones', () => {
  for (const n of ['resnet20', 'resnet20-w2', 'resnet32', 'resnet56', 'resnet18-cifar', 'resnet26', 'resnet18', 'resnet34', 'resnet50',
    'mobilenetv2', 'mobilenetv2-0.5']) assert.ok(modelNames().includes(n), n);
  assert.throws(() => modelSpec('vgg16'), (e: Error) => e instanceof InputError && /unknown architecture 'vgg16'/.test(e.message));
  assert.throws(() => modelSpec('toString'), InputError);
});

test('parameter counts match torchvision', () => {
  for (const [name, count] of Object.entries(COUNTS)) {
    const m = buildModel(name, 1000);
    assert.equal(m.parameters().reduce((n, p) => n + p.numel, 0), count, name);
    m.dispose();
  }
});

test('ResNet-50 has torchvision names and the Bottleneck stride on the 3×3', () => {
  const m = buildModel('resnet50', 10) as ResNet;
  const names = new Set(m.stateDict().keys());
  for (const k of ['conv1.weight', 'bn1.running_var', 'layer1.0.conv3.weight', 'layer1.0.downsample.0.weight',
    'layer1.0.downsample.1.num_batches_tracked', 'layer4.2.bn3.bias', 'fc.weight']) assert.ok(names.has(k), k);
  assert.equal(names.size, 320); // len(tvm.resnet50().state_dict())
  const b = (m.layers[1] as unknown as Record<string, Bottleneck>)['0'];
  assert.ok(b instanceof Bottleneck);
  assert.equal(b.conv1.stride, 1);
  assert.equal(b.conv2.stride, 2);
  assert.deepEqual(b.conv3.weight.shape, [512, 128, 1, 1]);
  assert.equal(m.featureDim, 2048);
  m.dispose();
});

test('MobileNetV2 has torchvision names at every width', () => {
  const m = buildModel('mobilenetv2', 10) as MobileNetV2;
  const names = [...m.stateDict().keys()];
  assert.equal(names.length, 314); // len(tvm.mobilenet_v2().state_dict())
  for (const k of ['features.0.0.weight', 'features.0.1.running_mean', 'features.1.conv.0.0.weight', 'features.1.conv.1.weight',
    'features.1.conv.2.bias', 'features.2.conv.0.0.weight', 'features.2.conv.1.0.weight', 'features.2.conv.2.weight',
    'features.2.conv.3.running_var', 'features.18.0.weight', 'classifier.1.weight']) assert.ok(names.includes(k), k);
  assert.equal(m.featureDim, 1280);
  m.dispose();
  assert.deepEqual([32 * 0.5, 16 * 0.5, 24 * 0.35, 320 * 0.35, 1280 * 1.4].map((v) => makeDivisible(v)), [16, 8, 8, 112, 1792]);
  const small = new MobileNetV2({ numClasses: 5, widthMult: 0.35 });
  assert.deepEqual(small.stateDict().get('features.0.0.weight')!.shape, [16, 3, 3, 3]);
  assert.deepEqual(small.stateDict().get('features.17.conv.2.weight')!.shape, [112, 336, 1, 1]);
  small.dispose();
});

test('every architecture runs forward and features at its own and at other input sizes', () => {
  manualSeed(0);
  const sizes: Record<string, number[]> = { resnet20: [32, 20], resnet26: [64], resnet18: [64, 40], resnet50: [40], 'mobilenetv2-0.5': [64, 33, 224] };
  for (const [name, ss] of Object.entries(sizes)) {
    const m = buildModel(name, 7).eval();
    for (const s of ss) {
      tidy(() => noGrad(() => {
        const x = randn([2, 3, s, s]);
        assert.deepEqual(m.forward(x).shape, [2, 7], `${name} at ${s}px`);
        assert.deepEqual(m.features(x).shape, [2, m.featureDim]);
      }));
    }
    m.dispose();
  }
});

test('blocks(): residual blocks with their conv/bn pairs in order, stem and shortcuts apart', () => {
  const r = buildModel('resnet20', 10);
  const blocks = r.blocks();
  assert.equal(blocks.length, 9);
  assert.deepEqual(blocks.map((b) => b.name).slice(0, 4), ['layer1.0', 'layer1.1', 'layer1.2', 'layer2.0']);
  assert.deepEqual(blocks[3].convs.map((c) => [c.convName, c.bnName]), [['layer2.0.conv1', 'layer2.0.bn1'], ['layer2.0.conv2', 'layer2.0.bn2']]);
  assert.equal(blocks[3].shortcut!.convName, 'layer2.0.downsample.0');
  assert.equal(blocks[0].shortcut, null);
  assert.deepEqual([blocks[3].inChannels, blocks[3].outChannels, blocks[3].stride, blocks[3].stage], [16, 32, 2, 1]);
  const roles = r.convBns().map((c) => c.role);
  assert.deepEqual([roles.filter((x) => x === 'stem').length, roles.filter((x) => x === 'block').length,
    roles.filter((x) => x === 'shortcut').length], [1, 18, 2]);
  const sd = r.stateDict();
  for (const c of r.convBns()) {
    assert.equal(sd.get(`${c.convName}.weight`), c.conv.weight);
    assert.equal(sd.get(`${c.bnName}.weight`), c.bn.weight);
    assert.equal(c.conv.outChannels, c.bn.numFeatures);
  }
  r.dispose();

  const r50 = buildModel('resnet50', 10);
  assert.equal(r50.blocks().length, 16);
  assert.ok(r50.blocks().every((b) => b.convs.length === 3));
  assert.equal(r50.blocks().filter((b) => b.shortcut).length, 4);
  r50.dispose();

  const m = buildModel('mobilenetv2', 10);
  const mb = m.blocks();
  assert.equal(mb.length, 17);
  assert.deepEqual(mb[0].convs.map((c) => c.kind), ['depthwise', 'project']);
  assert.deepEqual(mb[1].convs.map((c) => [c.convName, c.kind]),
    [['features.2.conv.0.0', 'expand'], ['features.2.conv.1.0', 'depthwise'], ['features.2.conv.2', 'project']]);
  assert.equal(mb[1].convs[2].bnName, 'features.2.conv.3');
  assert.equal(mb.filter((b) => b.residual).length, 10);
  assert.deepEqual(mb.map((b) => b.stage), [0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6]);
  const all = m.convBns();
  assert.equal(all.length, 52);
  assert.deepEqual([all[0].role, all[0].convName, all[51].role, all[51].convName], ['stem', 'features.0.0', 'head', 'features.18.0']);
  const msd = m.stateDict();
  for (const c of all) {
    assert.equal(msd.get(`${c.convName}.weight`), c.conv.weight, c.convName);
    const p = c.parent as unknown as Record<string, Module>;
    assert.ok(p[c.convKey] === c.conv && p[c.bnKey] === c.bn, c.convName);
  }
  for (const b of mb) assert.equal((b.parent as unknown as Record<string, Module>)[b.key], b.module);
  m.dispose();
});

/** A stand-in for a method's gated convolution: conv then BN, counting its calls. */
class Wrapped extends Module {
  calls = 0;
  constructor(readonly conv: Conv2d, readonly bn: BatchNorm2d) { super(); }
  forward(x: Tensor): Tensor { this.calls++; return this.bn.forward(this.conv.forward(x)); }
}

test('ConvBn.replace and BlockInfo.replace swap modules in the live model', () => {
  manualSeed(1);
  for (const name of ['resnet20', 'mobilenetv2-0.5']) {
    const m = buildModel(name, 4).eval();
    const x = randn([1, 3, 32, 32]);
    const before = noGrad(() => tidy(() => m.forward(x).toArray()));
    const wrapped: Wrapped[] = [];
    for (const b of m.blocks()) {
      for (const c of b.convs) {
        const w = new Wrapped(c.conv, c.bn);
        wrapped.push(w);
        c.replace(w, new Identity());
      }
    }
    const after = noGrad(() => tidy(() => m.forward(x).toArray()));
    assert.deepEqual(after, before, name);
    assert.ok(wrapped.every((w) => w.calls === 1), name);
    // Parameters are still found (under the new path).
    assert.ok(m.namedParameters().some(([k]) => /\.conv\.weight$/.test(k)));
    m.dispose();
  }
  const r = buildModel('resnet20', 4);
  const blk = r.blocks()[4];
  blk.replace(new Identity());
  assert.ok(![...r.stateDict().keys()].some((k) => k.startsWith('layer2.1.')));
  assert.equal(r.blocks().length, 8);
  r.dispose();
});

test('resetClassifier swaps the head for a new class count', () => {
  for (const name of ['resnet18', 'mobilenetv2-0.5']) {
    const m = buildModel(name, 1000).eval();
    m.resetClassifier(3);
    const { name: head, module } = m.classifier();
    assert.deepEqual(module.weight.shape, [3, m.featureDim]);
    assert.equal(m.stateDict().get(`${head}.weight`), module.weight);
    assert.equal(module.training, false);
    tidy(() => noGrad(() => assert.deepEqual(m.forward(randn([1, 3, 48, 48])).shape, [1, 3])));
    m.dispose();
  }
});

test('resnet26 is the Decathlon layout', () => {
  const m = buildModel('resnet26', 10) as ResNet;
  const convs = m.convBns().filter((c) => c.role !== 'shortcut');
  assert.equal(convs.length + 1, 26); // 25 convolutions + fc
  assert.deepEqual(m.conv1.weight.shape, [32, 3, 3, 3]);
  assert.deepEqual(m.blocks().map((b) => b.stride), [2, 1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1]);
  assert.ok(m.blocks().every((b) => b.module instanceof BasicBlock));
  tidy(() => noGrad(() => {
    m.eval();
    assert.deepEqual(m.forward(randn([1, 3, 64, 64])).shape, [1, 10]);
  }));
  m.dispose();
});
