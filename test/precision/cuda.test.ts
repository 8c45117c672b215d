/**
 * On a GPU (skipped without one): every tensor a method makes in its forward, loss and backward is on
 * the model's CUDA device (the device twin of float64.test.ts); bf16 and fp16 steps keep fp32
 * weights; a run trained on CUDA (fp16, loss-scaled) loads and evaluates on the CPU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Tensor, watchTensors } from '../../src/engine/tensor';
import { cudaDevices, onDevice } from '../../src/engine/device';
import { inPrecision, Precision } from '../../src/engine/precision';
import { manualSeed, randint, randn } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { tidy } from '../../src/engine/scope';
import { applyMethod, methodNames } from '../../src/methods/registry';
import { SGD } from '../../src/optim/sgd';
import { fineTune } from '../../src/train/trainer';
import { evaluate } from '../../src/train/evaluate-run';
import { fakePretrained } from '../methods/helpers';
import { SMALL_API, tmpDir } from '../train/helpers';
import { calibrationBatches } from './helpers';

setNumThreads(1);
const skip = cudaDevices() === 0 && 'no CUDA device here';
const DEVICE = 'cuda:0';

for (const method of methodNames()) {
  test(`${method} on CUDA: every tensor of the forward, loss and backward is on the GPU; bf16 and fp16 steps keep fp32 weights`, { skip }, async () => {
    manualSeed(0);
    const model = applyMethod(method, fakePretrained(0), 4);
    try {
      model.to(DEVICE);
      if (model.calibrate) await model.calibrate(calibrationBatches(6));
      const x = onDevice(randn([3, 3, 32, 32]), DEVICE);
      const y = onDevice(randint(0, 4, [3]), DEVICE);
      for (const training of [true, false]) {
        model.train(training);
        manualSeed(1);
        tidy(() => {
          const elsewhere: string[] = [];
          const loss = watchTensors(() => model.loss(model.run(x), y), (t: Tensor) => {
            if (!t.device.startsWith('cuda') && elsewhere.length < 5) elsewhere.push(`${t.dtype} [${t.shape}] on ${t.device}`);
          });
          assert.deepEqual(elsewhere, [], `${training ? 'training' : 'evaluation'} pass`);
          if (!training) return;
          loss.backward();
          for (const [k, p] of model.namedParameters()) if (p.grad) assert.match(p.grad.device, /^cuda/, `gradient of ${k}`);
        });
      }
      for (const precision of ['bf16', 'fp16'] as Precision[]) {
        const opt = new SGD(model.paramGroups({ lr: 0.01 }), { lr: 0.01, momentum: 0.9 });
        model.train();
        const lv = tidy(() => {
          opt.zeroGrad();
          const l = inPrecision(precision, DEVICE, () => model.loss(model.run(x), y));
          l.backward();
          opt.step();
          return l.item();
        });
        assert.ok(Number.isFinite(lv), `${precision} loss ${lv}`);
        for (const [k, t] of model.stateDict()) if (t.dtype !== 'int64') assert.equal(t.dtype, 'float32', `${precision}: ${k}`);
        opt.dispose();
      }
      x.dispose(); y.dispose();
    } finally {
      model.dispose();
    }
  });
}

test('a run trained on CUDA in fp16 (loss-scaled) is recorded as such and evaluates on the CPU as on the GPU', { skip }, async () => {
  const out = path.join(tmpDir('cuda-run'), 'run');
  const r = await fineTune({ ...SMALL_API, method: 'adafilter', epochs: 2, precision: 'fp16', device: 'cuda', out });
  assert.ok(Number.isFinite(r.test.loss));
  const gpu = await evaluate(out, { device: 'cuda' });
  assert.equal(gpu.acc, r.test.acc, 'eval on the GPU reproduces result.json');
  const cpu = await evaluate(out, { device: 'cpu' }); // fp16 runs evaluate in fp32 on the CPU
  assert.ok(Math.abs(cpu.loss - r.test.loss) < 0.02 * Math.max(1, r.test.loss), `CPU fp32 ${cpu.loss} vs GPU fp16 ${r.test.loss}`);
});
