/**
 * What a bf16 training step dispatches, op by op (engine/op-trace.ts): autocast casts each
 * convolution / linear parameter down once and its gradient up once, the input once, the logits
 * up for the loss and their gradient down, and nothing else; our own code casts nothing; BN runs on
 * bf16 activations with fp32 parameters; an fp32 step touches no bf16 at all. Checked against the
 * model's own layers and against PyTorch's profiler on the same step (bench/step-trace.py).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { native } from '../../src/engine/native';
import { OpRecord, traceOps } from '../../src/engine/op-trace';
import { manualSeed, randint, randn } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { tidy } from '../../src/engine/scope';
import { inPrecision, Precision } from '../../src/engine/precision';
import { crossEntropy } from '../../src/nn/functional';
import { Conv2d } from '../../src/nn/conv';
import { Linear } from '../../src/nn/linear';
import { BatchNorm2d } from '../../src/nn/batchnorm';
import { buildModel } from '../../src/models/registry';
import { SGD } from '../../src/optim/sgd';
import { LSTMCell } from '../../src/nn/lstm-cell';
import { applyMethod } from '../../src/methods/registry';
import { MethodModel } from '../../src/methods/method';
import { hasTorch, PYTHON } from '../models/helpers';

setNumThreads(1);

const BF16 = 'c10::BFloat16';
const STEP_TRACE_PY = path.join(__dirname, '../../../bench/step-trace.py');

test('traceOps records each dispatched op with its input dtypes and shapes, nested ops one level deeper, and stops with fn', () => {
  const x = randn([2, 3]);
  const { result, ops } = traceOps(() => x.add(1));
  const add = ops.find((r) => r.name === 'aten::add' && r.depth === 0);
  assert.ok(add, `no top-level aten::add in ${ops.map((r) => r.name).join(', ')}`);
  assert.equal(add.dtypes[0], 'float');
  assert.deepEqual(add.shapes[0], [2, 3]);
  assert.ok(ops.every((r) => r.depth >= 0));
  assert.deepEqual(result.shape, [2, 3]);
  assert.throws(() => native.opTraceStop(), /no trace is recording/, 'the callback is gone once traceOps returns');
  assert.throws(() => traceOps(() => { throw new Error('boom'); }), /boom/);
  const again = traceOps(() => x.mul(2));
  assert.equal(again.ops.filter((r) => r.name === 'aten::mul' && r.depth === 0).length, 1, 'a throwing fn leaves no trace running');
  // mul.Scalar runs as mul.Tensor on a wrapped number: the same name one level down.
  assert.ok(again.ops.some((r) => r.name === 'aten::mul' && r.depth === 1));
  again.result.dispose();
  result.dispose();
  x.dispose();
});

interface Step {
  ops: OpRecord[];
  /** Shapes of every Conv2d / Linear parameter: what autocast casts to bf16. */
  castParams: number[][];
  batchNorms: number;
  input: number[];
  logits: number[];
}

/** One steady-state training step of resnet20 as bench throughput times it (the second step onwards: momentum buffers exist). */
function tracedStep(precision: Precision): Step {
  manualSeed(0);
  const model = buildModel('resnet20', 10);
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const x = randn([4, 3, 16, 16]);
  const y = randint(0, 10, [4]);
  model.train();
  const step = () => tidy(() => {
    opt.zeroGrad();
    const loss = inPrecision(precision, 'cpu', () => crossEntropy(model.forward(x), y));
    loss.backward();
    opt.step();
  });
  try {
    step();
    step();
    const { ops } = traceOps(step);
    const layers = model.modules().filter((m) => m instanceof Conv2d || m instanceof Linear) as (Conv2d | Linear)[];
    const castParams = layers.flatMap((m) => [m.weight, ...(m.bias ? [m.bias] : [])]).map((p) => p.shape);
    const batchNorms = model.modules().filter((m) => m instanceof BatchNorm2d).length;
    return { ops, castParams, batchNorms, input: x.shape, logits: [4, 10] };
  } finally {
    model.dispose();
    opt.dispose();
    x.dispose();
    y.dispose();
  }
}

/** Shapes of the tensors copied from one dtype into another (a cast's copy_: destination, source). */
function casts(ops: { name: string; dtypes: string[]; shapes: number[][] }[], to: string, from: string): string[] {
  return ops.filter((r) => r.name === 'aten::copy_' && r.dtypes[0] === to && r.dtypes[1] === from).map((r) => JSON.stringify(r.shapes[1])).sort();
}

const shapes = (list: number[][]) => list.map((s) => JSON.stringify(s)).sort();

test('a bf16 training step casts each conv/linear parameter down once and its gradient up once, the input once, and nothing our code asked for', () => {
  const s = tracedStep('bf16');
  assert.ok(s.castParams.length > 20, 'resnet20 has 21 convolutions and a linear layer');
  // Down: the parameters and the input in the forward, the logits' gradient in the backward.
  assert.deepEqual(casts(s.ops, BF16, 'float'), shapes([...s.castParams, s.input, s.logits]));
  // Up: the logits for the fp32 loss in the forward, each cast parameter's gradient in the backward.
  assert.deepEqual(casts(s.ops, 'float', BF16), shapes([...s.castParams, s.logits]));
  const ours = s.ops.filter((r) => r.depth === 0 && /^aten::(to|_to_copy|copy_|contiguous)$/.test(r.name));
  assert.deepEqual(ours.map((r) => r.name), [], 'our own code converts no tensor; autocast does');
  const bn = s.ops.filter((r) => r.name === 'aten::native_batch_norm');
  assert.equal(bn.length, s.batchNorms);
  assert.ok(bn.every((r) => r.dtypes[0] === BF16 && r.dtypes.slice(1, 5).every((d) => d === 'float')), 'BN: bf16 activations, fp32 weight, bias and running statistics');
  // aten::_convolution, not the backend below it: on a CPU without AVX-512 libtorch runs bf16
  // convolutions through its im2col path (thnn_conv2d), not oneDNN's (mkldnn_convolution).
  const convs = s.ops.filter((r) => r.name === 'aten::_convolution');
  assert.equal(convs.length, s.castParams.length - 2, 'every convolution (the linear layer aside)');
  assert.ok(convs.every((r) => r.dtypes[0] === BF16 && r.dtypes[1] === BF16));
});

test('an fp32 training step dispatches no bf16 at all', () => {
  const s = tracedStep('fp32');
  const bf16 = s.ops.filter((r) => r.dtypes.includes(BF16));
  assert.deepEqual(bf16.map((r) => r.name), []);
  assert.equal(s.ops.filter((r) => r.name === 'aten::_convolution').length, s.castParams.length - 2);
});

test('our bf16 training step casts exactly what PyTorch\'s does (its profiler, the same resnet20 step)', { skip: !hasTorch() && 'needs /usr/bin/python3 with torch' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'op-trace-'));
  try {
    const file = path.join(dir, 'pytorch.jsonl');
    // bench/step-trace.py runs the throughput peer's resnet20 at 32 px: our side uses the same size here.
    const r = spawnSync(PYTHON, [STEP_TRACE_PY, 'resnet20', 'bf16', 'train', '2', '1', file, '0'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const theirs = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    manualSeed(0);
    const model = buildModel('resnet20', 10);
    const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
    const x = randn([2, 3, 32, 32]);
    const y = randint(0, 10, [2]);
    const step = () => tidy(() => {
      opt.zeroGrad();
      inPrecision('bf16', 'cpu', () => crossEntropy(model.forward(x), y)).backward();
      opt.step();
    });
    step();
    step();
    const { ops } = traceOps(step);
    model.dispose(); opt.dispose(); x.dispose(); y.dispose();
    assert.ok(casts(theirs, BF16, 'float').length > 20);
    assert.deepEqual(casts(ops, BF16, 'float'), casts(theirs, BF16, 'float'));
    assert.deepEqual(casts(ops, 'float', BF16), casts(theirs, 'float', BF16));
    // mkldnn's bf16 convolutions copy their output to make it contiguous; as many here as there.
    const clones = (rs: { name: string; dtypes: string[] }[]) => rs.filter((q) => q.name === 'aten::clone' && q.dtypes[0] === BF16).length;
    assert.equal(clones(ops), clones(theirs));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** One steady-state bf16 training step of a method on resnet20 (batch 3: no activation shares a parameter's shape). */
function tracedMethodStep(method: string): { ops: OpRecord[]; model: MethodModel } {
  manualSeed(0);
  const model = applyMethod(method, buildModel('resnet20', 10), 10);
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const x = randn([3, 3, 16, 16]);
  const y = randint(0, 10, [3]);
  model.train();
  const step = () => tidy(() => {
    opt.zeroGrad();
    inPrecision('bf16', 'cpu', () => model.loss(model.run(x), y)).backward();
    opt.step();
  });
  try {
    step();
    step();
    return { ops: traceOps(step).ops, model };
  } finally {
    opt.dispose();
    x.dispose();
    y.dispose();
  }
}

for (const method of ['finetune', 'adafilter', 'spottune']) {
  test(`${method}: a bf16 step casts no parameter twice (autocast's cache holds what is reused)`, () => {
    const { ops, model } = tracedMethodStep(method);
    try {
      const perShape = new Map<string, number>();
      for (const p of model.parameters()) perShape.set(JSON.stringify(p.shape), (perShape.get(JSON.stringify(p.shape)) ?? 0) + 1);
      const down = casts(ops, BF16, 'float');
      assert.ok(down.length > 20);
      for (const [shape, n] of perShape) {
        const cast = down.filter((s) => s === shape).length;
        assert.ok(cast <= n, `${cast} casts of parameters shaped ${shape}, only ${n} such parameters`);
      }
    } finally {
      model.dispose();
    }
  });
}

test("adafilter: the recurrent gate's LSTM cell runs once per gated layer, its weights are cast once per step", () => {
  const { ops, model } = tracedMethodStep('adafilter');
  try {
    const cell = model.modules().find((m) => m instanceof LSTMCell) as LSTMCell | undefined;
    assert.ok(cell, 'AdaFilter has a recurrent gate');
    const calls = ops.filter((r) => r.name === 'aten::lstm_cell' && r.depth === 0).length;
    assert.ok(calls > 10, `lstm_cell ran ${calls} times`);
    for (const w of [cell.weight_ih, cell.weight_hh]) {
      const shape = JSON.stringify(w.shape);
      assert.equal(model.parameters().filter((p) => JSON.stringify(p.shape) === shape).length, 1, `${shape} is the cell's alone`);
      assert.equal(casts(ops, BF16, 'float').filter((s) => s === shape).length, 1, `weight ${shape}: one cast for ${calls} calls`);
    }
  } finally {
    model.dispose();
  }
});
