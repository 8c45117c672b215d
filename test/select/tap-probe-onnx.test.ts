/**
 * ONNX export of a tap-probe model (what `adafilter select` leaves): the graph taps the backbone at
 * the chosen points, pools, concatenates and runs the head; onnxruntime must give our evaluation
 * logits on a ResNet and a MobileNetV2, with a hidden layer and with several taps of both poolings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { manualSeed, randn } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { applyMethod } from '../../src/methods';
import { buildModel } from '../../src/models/registry';
import { exportOnnx } from '../../src/io/onnx/export';
import { tmpDir } from '../helpers/tmp';
import { fakePretrained, randomizeBatchNorm } from '../methods/helpers';

setNumThreads(1);

const cases = [
  ['resnet20', () => fakePretrained(2), { taps: 'stem:max,layer2.1:mean,layer3.2:max', hidden: 8, dropout: 0.25 }],
  ['resnet20 (one tap, linear)', () => fakePretrained(3), { taps: 'layer1.2:mean' }],
  ['mobilenetv2-0.35', () => { manualSeed(4); return randomizeBatchNorm(buildModel('mobilenetv2-0.35', 10)); }, { taps: 'stem:mean,features.3:max,features.17:mean', hidden: 16 }],
] as const;

for (const [name, make, options] of cases) {
  test(`tap-probe on ${name} matches onnxruntime`, async () => {
    manualSeed(9);
    const m = applyMethod('tap-probe', make(), 5, options);
    const file = path.join(tmpDir('tap-onnx'), 'm.onnx');
    exportOnnx(m, file, { inputShape: [3, 32, 32] });
    m.eval();
    const session = await ort.InferenceSession.create(file);
    try {
      for (const n of [4, 1]) {
        const x = randn([n, 3, 32, 32]);
        const ours = tidy(() => noGrad(() => m.forward(x).toFloat32Array()));
        const out = (await session.run({ input: new ort.Tensor('float32', x.toFloat32Array(), [n, 3, 32, 32]) })).logits;
        assert.deepEqual(out.dims, [n, 5]);
        const worst = ours.reduce((w, v, i) => Math.max(w, Math.abs(v - (out.data as Float32Array)[i])), 0);
        assert.ok(worst <= 1e-4, `max abs error ${worst}`);
        assert.ok(ours.some((v) => Math.abs(v) > 1e-2), 'logits are not trivially small');
      }
    } finally {
      await session.release();
      m.dispose();
    }
  });
}
