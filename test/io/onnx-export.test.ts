import { test } from 'node:test';
import { randomizeBatchNorm } from '../methods/helpers';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { Tensor } from '../../src/engine/tensor';
import { tensor } from '../../src/engine/creation';
import { manualSeed, randn } from '../../src/engine/random';
import { noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { setNumThreads } from '../../src/engine/runtime';
import { isInputError } from '../../src/errors';
import { buildModel } from '../../src/models/registry';
import { MobileNetV2 } from '../../src/models/mobilenetv2';
import { Conv2d } from '../../src/nn/conv';
import { Module } from '../../src/nn/module';
import { Sequential } from '../../src/nn/sequential';
import { applyMethod } from '../../src/methods/registry';
import type { AdaFilterModel } from '../../src/methods/adafilter';
import type { SpotTuneModel } from '../../src/methods/spottune';
import type { GateStats } from '../../src/methods/gate-stats';
import { exportOnnx } from '../../src/io/onnx/export';
import { decodeModel } from '../../src/io/onnx/onnx-model';

setNumThreads(1);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adafilter-onnx-export-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

const randomizeBn = randomizeBatchNorm;

/** MobileNetV2's head starts at std 0.01, which would make any error look tiny: scale it to std 1. */
function loudHead<M extends Module>(m: M): M {
  noGrad(() => (m as unknown as MobileNetV2).classifier().module.weight.mul_(100));
  return m;
}

function maxAbs(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Exports, runs the file with onnxruntime at two batch sizes and compares with our eval forward. */
async function roundTrip(model: Module, name: string, hw: number, batches = [5, 2], opset = 17): Promise<number> {
  const file = path.join(dir, `${name}.onnx`);
  exportOnnx(model, file, { inputShape: [3, hw, hw], opset });
  model.eval();
  const session = await ort.InferenceSession.create(file);
  let worst = 0;
  try {
    for (const n of batches) {
      const x = randn([n, 3, hw, hw]);
      const ours = tidy(() => noGrad(() => (model.forward(x) as Tensor).toFloat32Array()));
      const out = await session.run({ input: new ort.Tensor('float32', x.toFloat32Array(), [n, 3, hw, hw]) });
      const logits = out.logits;
      assert.deepEqual(logits.dims, [n, ours.length / n]);
      worst = Math.max(worst, maxAbs(ours, logits.data as Float32Array));
      x.dispose();
    }
  } finally {
    await session.release();
  }
  console.log(`# ${name}: max abs error vs onnxruntime ${worst.toExponential(2)}`);
  assert.ok(worst <= 1e-4, `${name}: max abs error ${worst}`);
  return worst;
}

/** Gate statistics of one eval pass (fractions of fine-tuned choices). */
function gateStats(m: AdaFilterModel | SpotTuneModel, x: Tensor): GateStats {
  m.eval();
  const stats = m.collectStats();
  tidy(() => noGrad(() => stats.update(m.run(x), new Array(x.size(0)).fill(0))));
  return stats.result() as GateStats;
}

test('plain resnet20 and mobilenetv2-0.5 match onnxruntime, with a dynamic batch', async () => {
  manualSeed(0);
  await roundTrip(randomizeBn(buildModel('resnet20', 10)), 'resnet20', 32);
  await roundTrip(loudHead(randomizeBn(buildModel('mobilenetv2-0.5', 10))), 'mobilenetv2-0.5', 32);
});

test('MobileNetV2 with Keras-style asymmetric padding (explicit conv pads) matches onnxruntime', async () => {
  manualSeed(6);
  const m = randomizeBn(new MobileNetV2({ numClasses: 10, widthMult: 0.35, padding: 'keras', bnEps: 1e-3 } as ConstructorParameters<typeof MobileNetV2>[0]));
  assert.ok(m.modules().some((x) => Array.isArray((x as { pads?: unknown }).pads)), 'the keras build has explicit pads');
  await roundTrip(loudHead(m), 'mobilenetv2-keras', 32, [2]);
});

test('the file is valid ONNX: opset, dynamic batch input, logits output, named initializers', () => {
  manualSeed(0);
  const file = path.join(dir, 'meta.onnx');
  exportOnnx(buildModel('resnet20', 10), file, { inputShape: [1, 3, 32, 32], opset: 13 });
  const m = decodeModel(fs.readFileSync(file), file);
  assert.deepEqual(m.opsets, [{ domain: '', version: 13 }]);
  assert.deepEqual(m.graph.inputs.map((v) => [v.name, v.shape]), [['input', ['N', 3, 32, 32]]]);
  assert.deepEqual(m.graph.outputs.map((v) => [v.name, v.shape]), [['logits', ['N', 10]]]);
  const names = new Set(m.graph.initializers.map((t) => t.name));
  for (const k of ['conv1.weight', 'bn1.running_var', 'layer3.0.downsample.0.weight', 'fc.bias']) assert.ok(names.has(k), k);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

test('AdaFilter resnet20 (mixed per-example gates, F ≠ S, BN_F ≠ BN_S) matches onnxruntime', async () => {
  manualSeed(1);
  const m = applyMethod('adafilter', randomizeBn(buildModel('resnet20', 10)), 7) as AdaFilterModel;
  noGrad(() => {
    for (const g of m.gated) {
      g.weight_f.add_(tidy(() => randn(g.weight_f.shape).mul(0.05)));
      g.norm.bn_f!.weight!.add_(0.1);
      g.norm.bn_f!.running_mean.add_(0.05);
      g.norm.bn_f!.running_var.mul_(1.2);
    }
  });
  const x = randn([8, 3, 32, 32]);
  const s = gateStats(m, x);
  assert.ok(s.fraction > 0.05 && s.fraction < 0.95, `overall fraction ${s.fraction}`);
  assert.ok(s.layers.some((l) => l.filtersVarying > 0), 'some gate differs between examples');
  await roundTrip(m, 'adafilter-resnet20', 32, [6, 3]);
});

test('AdaFilter variants: MobileNetV2 (depthwise gated convs), no gated BN, static gates, forced gates; random gates are refused', async () => {
  manualSeed(2);
  const nogbn = applyMethod('adafilter-nogbn', randomizeBn(buildModel('resnet20', 10)), 4) as AdaFilterModel;
  noGrad(() => { for (const g of nogbn.gated) g.weight_f.add_(tidy(() => randn(g.weight_f.shape).mul(0.05))); });
  await roundTrip(nogbn, 'adafilter-nogbn-opset13', 32, [3], 13);
  const st = applyMethod('adafilter-static', randomizeBn(buildModel('resnet20', 10)), 4) as AdaFilterModel;
  noGrad(() => {
    for (const g of st.gated) g.weight_f.add_(tidy(() => randn(g.weight_f.shape).mul(0.05)));
    for (const p of st.gate.parameters()) p.normal_(0, 1);
  });
  await roundTrip(st, 'adafilter-static', 32, [3]);
  const mb = applyMethod('adafilter', randomizeBn(buildModel('mobilenetv2-0.35', 10)), 4) as AdaFilterModel;
  noGrad(() => { for (const g of mb.gated) g.weight_f.add_(tidy(() => randn(g.weight_f.shape).mul(0.05))); });
  await roundTrip(mb, 'adafilter-mobilenet', 32, [3]);
  const forced = applyMethod('adafilter', randomizeBn(buildModel('mobilenetv2-0.35', 10)), 4, { forceGates: 1 }) as AdaFilterModel;
  noGrad(() => { for (const g of forced.gated) g.weight_f.add_(tidy(() => randn(g.weight_f.shape).mul(0.05))); });
  await roundTrip(forced, 'adafilter-forced-mobilenet', 32, [2]);
  const rnd = applyMethod('random-filter', buildModel('resnet20', 10), 4);
  assert.throws(() => exportOnnx(rnd, path.join(dir, 'rnd.onnx'), { inputShape: [3, 32, 32] }),
    (e: Error) => isInputError(e) && /random gates/.test(e.message));
});

test('SpotTune resnet20 (mixed per-example block choices, tuned ≠ frozen) matches onnxruntime', async () => {
  manualSeed(3);
  const m = applyMethod('spottune', randomizeBn(buildModel('resnet20', 10)), 5) as SpotTuneModel;
  noGrad(() => {
    for (const b of m.blocks) for (const mod of b.tuned.modules()) {
      if (mod instanceof Conv2d) mod.weight.add_(tidy(() => randn(mod.weight.shape).mul(0.05)));
    }
    randomizeBn(m.policy);
  });
  const x = randn([8, 3, 32, 32]);
  // A fresh policy makes the same choice for every example (its logit differences hardly depend on
  // the image); centring each block's difference on this batch's median makes the choices differ
  // between examples, which is what the graph must reproduce.
  m.eval();
  const logits = tidy(() => noGrad(() => m.policy.forward(x).toFloat32Array()));
  const blocks = m.blocks.length, n = x.size(0);
  const bias = m.policy.fc.bias!.toFloat32Array().slice();
  for (let b = 0; b < blocks; b++) {
    const d = Array.from({ length: n }, (_, i) => logits[i * 2 * blocks + 2 * b + 1] - logits[i * 2 * blocks + 2 * b]).sort((p, q) => p - q);
    bias[2 * b + 1] -= (d[n / 2 - 1] + d[n / 2]) / 2;
  }
  noGrad(() => m.policy.fc.bias!.copy_(tensor(bias)));
  const s = gateStats(m, x);
  assert.ok(s.fraction > 0.05 && s.fraction < 0.95, `overall fraction ${s.fraction}`);
  assert.ok(s.layers.some((l) => l.fraction > 0 && l.fraction < 1), 'some block choice differs between examples');
  await roundTrip(m, 'spottune-resnet20', 32, [8, 3]);
});

test('plain method models on MobileNetV2 (classifier container with dropout) match onnxruntime', async () => {
  manualSeed(4);
  await roundTrip(applyMethod('finetune', randomizeBn(buildModel('mobilenetv2-0.35', 10)), 3), 'finetune-mobilenet', 32, [2]);
  await roundTrip(applyMethod('linear-probe', randomizeBn(buildModel('resnet20', 10)), 3), 'linear-probe-resnet20', 32, [2]);
});

test('unknown modules, bad shapes and bad opsets are InputErrors naming the problem', () => {
  class Odd extends Module { forward(x: Tensor): Tensor { return x.mul(2); } }
  const seq = new Sequential(new Conv2d(3, 4, 3), new Odd());
  assert.throws(() => exportOnnx(seq, path.join(dir, 'odd.onnx'), { inputShape: [3, 8, 8] }),
    (e: Error) => isInputError(e) && /module '1' of type Odd/.test(e.message));
  const m = buildModel('resnet20', 10);
  assert.throws(() => exportOnnx(m, path.join(dir, 'x.onnx'), { inputShape: [1, 32, 32] }), (e: Error) => isInputError(e) && /3 input channels/.test(e.message));
  assert.throws(() => exportOnnx(m, path.join(dir, 'x.onnx'), { inputShape: [3, 32] }), (e: Error) => isInputError(e));
  assert.throws(() => exportOnnx(m, path.join(dir, 'x.onnx'), { inputShape: [3, 32, 32], opset: 12 }), (e: Error) => isInputError(e) && /opset/.test(e.message));
  assert.throws(() => exportOnnx(m, path.join(dir, 'no', 'such', 'x.onnx'), { inputShape: [3, 32, 32] }), (e: Error) => isInputError(e) && /cannot write/.test(e.message));
});
