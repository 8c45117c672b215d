/**
 * ONNX export of gna (issue 19): its evaluation is the plain network with the trained weights, so
 * the exported graph (each grouped conv written as the Conv it computes) must give our evaluation
 * logits under onnxruntime, after grouped training steps, on a ResNet and on a MobileNetV2 (whose
 * depthwise convolutions are grouped too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { Tensor } from '../../src/engine/tensor';
import { manualSeed, randn, randint } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { SGD } from '../../src/optim/sgd';
import { applyMethod } from '../../src/methods';
import { GnaModel } from '../../src/methods/gna';
import { buildModel } from '../../src/models/registry';
import { exportOnnx } from '../../src/io/onnx/export';
import type { Batch } from '../../src/data/loader';
import { tmpDir } from '../helpers/tmp';
import { fakePretrained, randomizeBatchNorm, step } from './helpers';

setNumThreads(1);

async function* batches(x: Tensor, size: number): AsyncGenerator<Batch> {
  const data = x.contiguous().data() as Float32Array, [n, c, h, w] = x.shape;
  for (let i = 0; i < n; i += size) {
    const k = Math.min(size, n - i);
    yield { x: data.slice(i * c * h * w, (i + k) * c * h * w), y: new Int32Array(k), shape: [k, c, h, w] };
  }
}

for (const [arch, make] of [['resnet20', () => fakePretrained(5)], ['mobilenetv2-0.35', () => { manualSeed(6); return randomizeBatchNorm(buildModel('mobilenetv2-0.35', 10)); }]] as const) {
  test(`gna on ${arch}: calibrated, trained a few grouped steps, exported; onnxruntime gives our evaluation logits`, async () => {
    manualSeed(7);
    const m = applyMethod('gna', make(), 4, { ratio: 0.5 }) as GnaModel;
    await m.calibrate(batches(randn([16, 3, 32, 32]), 8));
    assert.ok(m.grouping().some((l) => new Set(l.groups).size < l.channels), 'some filters share a group');
    const opt = new SGD(m.paramGroups({ lr: 0.05, weightDecay: 5e-4 }), { lr: 0.05, momentum: 0.9 });
    m.train();
    const x = randn([8, 3, 32, 32]), y = randint(0, 4, [8]);
    for (let k = 0; k < 3; k++) step(m, opt, x, y);
    opt.dispose();
    const file = path.join(tmpDir('gna-onnx'), `${arch}.onnx`);
    exportOnnx(m, file, { inputShape: [3, 32, 32] });
    m.eval();
    const session = await ort.InferenceSession.create(file);
    try {
      for (const n of [5, 2]) {
        const xi = randn([n, 3, 32, 32]);
        const ours = tidy(() => noGrad(() => m.forward(xi).toFloat32Array()));
        const theirs = (await session.run({ input: new ort.Tensor('float32', xi.toFloat32Array(), [n, 3, 32, 32]) })).logits;
        assert.deepEqual(theirs.dims, [n, 4]);
        const worst = ours.reduce((w, v, i) => Math.max(w, Math.abs(v - (theirs.data as Float32Array)[i])), 0);
        assert.ok(worst <= 1e-4, `max abs error ${worst}`);
        const scale = ours.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
        assert.ok(scale > 1e-2, 'logits are not trivially small');
      }
    } finally {
      await session.release();
      m.dispose();
    }
  });
}
