/**
 * The fast linear probe (issue 14): cached features give the head the uncached run gives; the
 * backbone can be cut at a block (--features-from), and an unknown block is exit 2 with the list.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { fineTune, evaluate } from '../../src';
import { loadSafetensors } from '../../src/io/safetensors';
import { readLog } from '../../src/train/run-folder';
import { FeatureCache } from '../../src/train/feature-cache';
import { buildModel } from '../../src/models/registry';
import type { Backbone } from '../../src/models/backbone';
import { ResNet } from '../../src/models/resnet';
import { MobileNetV2 } from '../../src/models/mobilenetv2';
import { applyMethod } from '../../src/methods/registry';
import { LinearProbeModel, cutPoints } from '../../src/methods/linear-probe';
import { manualSeed, randn } from '../../src/engine/random';
import { noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import * as F from '../../src/nn/functional';
import { isInputError } from '../../src/errors';
import { exportOnnx } from '../../src/io/onnx/export';
import * as ort from 'onnxruntime-node';
import { SMALL, SMALL_API, cli, tmpDir } from './helpers';

/** Counts cached steps: the cache must really be in use for the comparison to mean anything. */
function countCachedSteps(): { n: number; restore(): void } {
  const original = FeatureCache.prototype.logits;
  const c = { n: 0, restore: () => { FeatureCache.prototype.logits = original; } };
  FeatureCache.prototype.logits = function (this: FeatureCache, b) { c.n++; return original.call(this, b); };
  return c;
}

test('linear probe on cached features: the same head and losses as running the backbone every step', async () => {
  const base = tmpDir('cache');
  const o = { ...SMALL_API, method: 'linear-probe', epochs: 3, augment: false, lr: 0.1 };
  const spy = countCachedSteps();
  const cached = await fineTune({ ...o, out: path.join(base, 'cached') }).finally(() => spy.restore());
  const steps = spy.n;
  assert.equal(steps, 3 * Math.ceil(18 / 8), 'every step of the cached run used the cache');
  const spy2 = countCachedSteps();
  let plain;
  try {
    plain = await fineTune({ ...o, featureCache: false, out: path.join(base, 'plain') });
    // With augmentation the features change every epoch: no cache.
    await fineTune({ ...o, epochs: 1, augment: true, out: path.join(base, 'augmented') });
  } finally {
    spy2.restore();
  }
  assert.equal(spy2.n, 0, 'featureCache: false and augmented runs run the backbone');
  const a = loadSafetensors(path.join(cached.dir, 'model.safetensors')), b = loadSafetensors(path.join(plain.dir, 'model.safetensors'));
  try {
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    for (const [k, t] of a) {
      const d = tidy(() => t.sub(b.get(k)!).abs().max().item());
      assert.ok(d <= 1e-5, `${k} differs by ${d}`);
    }
    assert.ok(tidy(() => a.get('backbone.fc.weight')!.abs().max().item()) > 0, 'the head is not zero');
  } finally {
    for (const t of [...a.values(), ...b.values()]) t.dispose();
  }
  const la = readLog(cached.dir), lb = readLog(plain.dir);
  la.forEach((l, i) => {
    assert.ok(Math.abs(l.trainLoss - lb[i].trainLoss) <= 1e-5, `epoch ${i + 1} train loss ${l.trainLoss} vs ${lb[i].trainLoss}`);
    assert.equal(l.valAcc, lb[i].valAcc);
  });
  assert.ok(Math.abs(cached.test.loss - plain.test.loss) <= 1e-5);
});

/** A seeded network in eval mode (the reference to compute by hand from) and a linear probe cut at `featuresFrom` on a copy of its weights. */
function cutCopy<M extends Backbone>(backbone: string, seed: number, featuresFrom: string): { ref: M; probe: LinearProbeModel } {
  manualSeed(seed);
  const ref = buildModel(backbone, 3) as M;
  ref.eval();
  const cut = buildModel(backbone, 3);
  cut.loadStateDict(ref.stateDict());
  return { ref, probe: applyMethod('linear-probe', cut, 3, { featuresFrom }) as LinearProbeModel };
}

test('--features-from: the probe reads the global average of that block, the head is sized to it', async () => {
  const { ref, probe } = cutCopy<ResNet>('resnet20', 3, 'layer2.1');
  try {
    assert.deepEqual(probe.head.weight.shape, [3, 32]);
    assert.deepEqual(cutPoints(ref).map((c) => c.name), ['layer1.0', 'layer1.1', 'layer1.2', 'layer2.0', 'layer2.1', 'layer2.2', 'layer3.0', 'layer3.1', 'layer3.2']);
    tidy(() => noGrad(() => {
      const x = randn([2, 3, 32, 32]);
      // By hand, from the uncut network: stem, layer1, then layer2's first two blocks.
      let h = F.relu(ref.bn1.forward(ref.conv1.forward(x)));
      h = ref.layers[0].forward(h);
      const l2 = ref.layers[1] as unknown as Record<string, { forward(t: typeof x): typeof x }>;
      h = l2['1'].forward(l2['0'].forward(h));
      const want = F.globalAvgPool(h);
      const got = probe.eval().features(x);
      assert.deepEqual(got.shape, [2, 32]);
      assert.ok(got.sub(want).abs().max().item() <= 1e-6);
    }));
  } finally {
    probe.dispose();
    ref.dispose();
  }
  // MobileNetV2: the layers after the last block (1×1 to 1280, BN, ReLU6) go too.
  const { ref: mref, probe: mprobe } = cutCopy<MobileNetV2>('mobilenetv2-0.5', 4, 'features.13');
  try {
    assert.deepEqual(mprobe.head.weight.shape, [3, 48]);
    tidy(() => noGrad(() => {
      const x = randn([2, 3, 64, 64]);
      let h = x;
      for (const l of mref.features_.layers.slice(0, 14)) h = l.forward(h);
      const got = mprobe.eval().features(x);
      assert.ok(got.sub(F.globalAvgPool(h)).abs().max().item() <= 1e-6);
      assert.deepEqual(mprobe.forward(x).shape, [2, 3]);
    }));
    // The exported graph is the cut network (the removed layers are identities in the module tree).
    const file = path.join(tmpDir('cut-onnx'), 'cut.onnx');
    exportOnnx(mprobe, file, { inputShape: [3, 64, 64] });
    const x = randn([2, 3, 64, 64]);
    const want = tidy(() => noGrad(() => mprobe.forward(x).data() as Float32Array));
    const session = await ort.InferenceSession.create(file);
    const got = (await session.run({ input: new ort.Tensor('float32', Float32Array.from(x.data() as Float32Array), [2, 3, 64, 64]) })).logits.data as Float32Array;
    x.dispose();
    assert.equal(got.length, 6);
    got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= 1e-4, `ONNX logit ${i}: ${v} vs ${want[i]}`));
  } finally {
    mprobe.dispose();
    mref.dispose();
  }
  assert.throws(() => applyMethod('linear-probe', buildModel('resnet20', 3), 3, { featuresFrom: 'layer9.9' }),
    (e) => isInputError(e) && /cut points: layer1\.0, layer1\.1, .*layer3\.2/.test((e as Error).message));

  // A cut run trains on cached features, and reloads (eval) with its cut.
  const r = await fineTune({ ...SMALL_API, method: 'linear-probe', methodOptions: { featuresFrom: 'layer2.2' }, epochs: 1, augment: false, out: path.join(tmpDir('cut'), 'run') });
  const e = await evaluate(r.dir);
  assert.equal(e.acc, r.test.acc);
});

test('CLI: --features-from an unknown block is exit 2 with the valid ones; other methods are refused', () => {
  const out = path.join(tmpDir('cutcli'), 'run');
  const bad = cli('train', ...SMALL, '--method', 'linear-probe', '--features-from', 'layer4.0', '--epochs', '1', '--out', out);
  assert.equal(bad.status, 2, bad.stderr);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(bad.stderr, /'layer4\.0' is not a block .* cut points: layer1\.0, .*layer3\.2/);
  const other = cli('train', ...SMALL, '--method', 'finetune', '--features-from', 'layer2.0', '--epochs', '1', '--out', out);
  assert.equal(other.status, 2);
  assert.match(other.stderr, /only linear-probe/);
});
