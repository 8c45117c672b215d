/**
 * bf16 autocast on the CPU: the scope restores autocast exactly; it really runs (bf16 logits that
 * differ from fp32, within bf16's rounding); fp32 passes after it are bit for bit what they were
 * before; master weights, gradients and optimizer state stay fp32; AdaFilter's gate decides in fp32.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { native } from '../../src/engine/native';
import { manualSeed, randint, randn } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { tidy } from '../../src/engine/scope';
import { noGrad } from '../../src/engine/autograd';
import { Tensor } from '../../src/engine/tensor';
import { autocastOn, inPrecision, Precision } from '../../src/engine/precision';
import { dtypeCode } from '../../src/engine/dtype';
import { applyMethod, methodNames } from '../../src/methods/registry';
import { MethodModel } from '../../src/methods/method';
import { RecurrentGate } from '../../src/methods/adafilter/gate';
import { gumbelSoftmaxST } from '../../src/methods/spottune';
import { SGD } from '../../src/optim/sgd';
import { fakePretrained } from '../methods/helpers';
import { calibrationBatches } from './helpers';

setNumThreads(1);

/** Autocast of a device type as [enabled, dtype code], read without changing it. */
function autocastNow(type: 'cpu' | 'cuda'): [boolean, number] {
  const [enabled, dtype] = native.autocastState(type, false);
  native.autocastState(type, enabled, dtype);
  return [enabled, dtype];
}

test('autocastOn restores the autocast state it found (on or off, and its dtype), nested, and when fn throws', () => {
  const bf16 = dtypeCode('bfloat16'), fp16 = dtypeCode('float16');
  assert.deepEqual(autocastNow('cpu'), [false, bf16]);
  autocastOn('cpu', 'bfloat16', () => {
    assert.deepEqual(autocastNow('cpu'), [true, bf16]);
    autocastOn('cpu', 'bfloat16', () => assert.deepEqual(autocastNow('cpu'), [true, bf16]));
    assert.deepEqual(autocastNow('cpu'), [true, bf16], 'the inner scope leaves the outer one on');
  });
  assert.deepEqual(autocastNow('cpu'), [false, bf16]);
  assert.throws(() => autocastOn('cpu', 'bfloat16', () => { throw new Error('boom'); }), /boom/);
  assert.deepEqual(autocastNow('cpu'), [false, bf16]);
  // The dtype is restored too: CUDA's autocast state (fp16 by default) can be set without a GPU as
  // long as nothing runs under it.
  assert.deepEqual(autocastNow('cuda'), [false, fp16]);
  autocastOn('cuda:0', 'bfloat16', () => assert.deepEqual(autocastNow('cuda'), [true, bf16]));
  assert.deepEqual(autocastNow('cuda'), [false, fp16]);
  assert.deepEqual(autocastNow('cpu'), [false, bf16], "CUDA's scope leaves the CPU's alone");
});

interface Pass {
  logits: Float32Array;
  logitsDtype: string;
  grads: Map<string, Float32Array>;
  gradDtypes: Set<string>;
}

/** One training-mode forward, loss and backward in `precision` (noise from seed 1); gradients then cleared. */
function pass(model: MethodModel, x: Tensor, y: Tensor, precision: Precision): Pass {
  model.train();
  manualSeed(1);
  return tidy(() => {
    const { logits, loss } = inPrecision(precision, 'cpu', () => {
      const out = model.run(x);
      return { logits: out.logits, loss: model.loss(out, y) };
    });
    loss.backward();
    const grads = new Map<string, Float32Array>();
    const gradDtypes = new Set<string>();
    for (const [k, p] of model.namedParameters()) {
      const g = p.grad;
      if (!g) continue;
      gradDtypes.add(g.dtype);
      grads.set(k, g.toFloat32Array());
      p.grad = null;
    }
    return { logits: logits.toFloat32Array(), logitsDtype: logits.dtype, grads, gradDtypes };
  });
}

for (const method of ['finetune', 'adafilter']) {
  test(`${method}: a bf16 pass is autocast and close to fp32; fp32 afterwards is bit for bit what it was before`, () => {
    const model = applyMethod(method, fakePretrained(0), 4);
    manualSeed(2);
    const x = randn([4, 3, 32, 32]);
    const y = randint(0, 4, [4]);
    try {
      const fp32 = pass(model, x, y, 'fp32');
      const bf16 = pass(model, x, y, 'bf16');
      const again = pass(model, x, y, 'fp32');

      assert.equal(fp32.logitsDtype, 'float32');
      assert.equal(bf16.logitsDtype, 'bfloat16', 'the head ran in bf16: autocast was on');
      let diff = 0, scale = 0;
      fp32.logits.forEach((v, i) => { diff = Math.max(diff, Math.abs(v - bf16.logits[i])); scale = Math.max(scale, Math.abs(v)); });
      assert.ok(diff > 0, 'bf16 logits differ from fp32 ones');
      assert.ok(diff < 0.05 * scale, `bf16 logits within 5% of the logit scale of fp32 (max diff ${diff}, scale ${scale})`);
      assert.deepEqual([...bf16.gradDtypes], ['float32'], 'gradients of the fp32 master weights are fp32');
      assert.deepEqual([...bf16.grads.keys()], [...fp32.grads.keys()]);

      assert.deepEqual(again.logits, fp32.logits, 'fp32 logits after a bf16 pass: bit for bit');
      for (const [k, g] of fp32.grads) assert.deepEqual(again.grads.get(k), g, `fp32 gradient of ${k} after a bf16 pass: bit for bit`);
    } finally {
      model.dispose();
    }
  });
}

test("AdaFilter's gate thresholds fp32 logits under bf16 autocast (the head itself computes in bf16)", () => {
  manualSeed(3);
  const gate = new RecurrentGate([{ inChannels: 8, outChannels: 6 }], { inputSize: 4, hiddenSize: 5, tau: 1, initFraction: 0.5, detachInput: false });
  gate.noiseScale = 0; // deterministic straight-through: the gate is exactly [z > 0]
  const x = randn([3, 8, 5, 5]);
  try {
    autocastOn('cpu', 'bfloat16', () => tidy(() => {
      assert.equal(gate.start(3).logits(0, x, true).dtype, 'bfloat16', 'the gate head runs in bf16 under autocast');
      const { g, z } = gate.start(3).gate(0, x, true);
      assert.equal(z!.dtype, 'float32');
      assert.equal(g.dtype, 'float32');
      assert.deepEqual(Array.from(g.toFloat32Array()), Array.from(noGrad(() => z!.gt(0).toFloat32Array())));
    }));
  } finally {
    x.dispose();
    gate.dispose();
  }
});

test("SpotTune's policy choice is taken in fp32 from bf16 logits: one-hot rows, fp32", () => {
  manualSeed(5);
  tidy(() => {
    const logits = randn([6, 3]).to('bfloat16');
    const choice = gumbelSoftmaxST(logits, 1);
    assert.equal(choice.dtype, 'float32');
    const rows = Array.from(choice.toFloat32Array());
    for (let i = 0; i < 6; i++) {
      const r = rows.slice(3 * i, 3 * i + 3);
      assert.deepEqual(r.slice().sort(), [0, 0, 1], `row ${i} is one-hot: ${r}`);
    }
  });
});

for (const method of methodNames()) {
  test(`${method}: a bf16 training step keeps fp32 weights, gradients and optimizer state`, async () => {
    const model = applyMethod(method, fakePretrained(0), 4);
    if (model.calibrate) await model.calibrate(calibrationBatches(6)); // gna groups its filters first, as the trainer does
    const opt = new SGD(model.paramGroups({ lr: 0.01, weightDecay: 5e-4 }), { lr: 0.01, momentum: 0.9 });
    manualSeed(4);
    const x = randn([4, 3, 32, 32]);
    const y = randint(0, 4, [4]);
    try {
      model.train();
      const loss = tidy(() => {
        opt.zeroGrad();
        const l = inPrecision('bf16', 'cpu', () => model.loss(model.run(x), y));
        l.backward();
        opt.step();
        return l.item();
      });
      assert.ok(Number.isFinite(loss), `finite loss (${loss})`);
      for (const [k, t] of model.stateDict()) if (t.dtype !== 'int64') assert.equal(t.dtype, 'float32', k);
      const state = opt.stateDict().state.flatMap((s) => Object.values(s)).filter((v): v is Tensor => typeof v === 'object');
      assert.ok(state.length > 0, 'momentum buffers exist');
      for (const t of state) assert.equal(t.dtype, 'float32');
    } finally {
      opt.dispose();
      model.dispose();
      x.dispose(); y.dispose();
    }
  });
}
