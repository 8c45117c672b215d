/**
 * Every case of test/fixtures/reference.json (recorded from PyTorch 1.13 by
 * test/reference/make_reference.py) replayed through the engine: forward output, the gradient of
 * sum_k(out_k * g_k) with respect to every input listed in "grads", running statistics after a
 * training-mode batch norm, three optimiser steps, and learning-rate schedules.
 *
 * Dispatch is by the case's "op"; an op this file does not know, or a PyTorch keyword argument a
 * handler does not map, fails that case, so a new fixture case can never be skipped silently.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  Tensor, tensor, tidy, F, Parameter, SGD, AdamW, Optimizer, LRScheduler, cosine, stepDecay, Schedule,
} from '../../src/index';

interface RefTensor { shape: number[]; dtype: 'float32' | 'float64' | 'int64'; data: number[] }
interface RefCase {
  name: string;
  op: string;
  inputs: Record<string, RefTensor>;
  params: Record<string, unknown>;
  output: RefTensor | Record<string, RefTensor>;
  grads: Record<string, RefTensor>;
  state_after?: Record<string, RefTensor>;
}
interface RefFile { format: number; torch: string; cases: RefCase[] }

const FIXTURE = path.join(__dirname, '../../../test/fixtures/reference.json');
const ref: RefFile = JSON.parse(fs.readFileSync(FIXTURE, 'utf8'));

/** Default tolerance: |a − b| ≤ ATOL + RTOL·|b| per element (float32 arithmetic, reordered sums). */
const ATOL = 1e-5;
const RTOL = 1e-5;

function isRefTensor(v: unknown): v is RefTensor {
  return typeof v === 'object' && v !== null && Array.isArray((v as RefTensor).shape) && Array.isArray((v as RefTensor).data);
}

function build(r: RefTensor, requiresGrad = false): Tensor {
  switch (r.dtype) {
    case 'float32':
      return tensor(Float32Array.from(r.data), { shape: r.shape, dtype: 'float32', requiresGrad });
    case 'float64':
      return tensor(Float64Array.from(r.data), { shape: r.shape, dtype: 'float64', requiresGrad });
    case 'int64':
      return tensor(BigInt64Array.from(r.data, (v) => BigInt(v)), { shape: r.shape, dtype: 'int64' });
    default:
      throw new Error(`fixture tensor of unsupported dtype ${(r as RefTensor).dtype}`);
  }
}

function expectClose(actual: Tensor, expected: RefTensor, what: string, atol = ATOL, rtol = RTOL): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  if (expected.dtype === 'int64') {
    assert.equal(actual.dtype, 'int64', `${what}: dtype`);
    assert.deepEqual(actual.toArray(), expected.data, `${what}: values`);
    return;
  }
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
  const a = actual.toArray();
  // fixture float32 values are the shortest decimals of float32s: round them back to float32
  const b = expected.dtype === 'float32' ? Array.from(Float32Array.from(expected.data)) : expected.data;
  assert.equal(a.length, b.length, `${what}: element count`);
  let worst = -1, worstExcess = 0;
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i] - b[i]);
    const excess = err - (atol + rtol * Math.abs(b[i]));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(err))) { worst = i; worstExcess = excess; }
  }
  if (worst >= 0) {
    assert.fail(`${what}: element ${worst} is ${a[worst]}, PyTorch ${b[worst]} (|diff| ${Math.abs(a[worst] - b[worst])} > ${atol} + ${rtol}·|ref|)`);
  }
}

/** Reads the case's params, failing on any key the handler did not ask for. */
function paramReader(c: RefCase) {
  const used = new Set<string>();
  const get = <T>(key: string, fallback?: T): T => {
    used.add(key);
    if (key in c.params) return c.params[key] as T;
    if (fallback === undefined) throw new Error(`${c.name}: param '${key}' missing from fixture`);
    return fallback;
  };
  const done = () => {
    const unknown = Object.keys(c.params).filter((k) => !used.has(k));
    if (unknown.length) throw new Error(`${c.name}: fixture params not mapped to the engine: ${unknown.join(', ')}`);
  };
  return { get, done };
}

type Inputs = Record<string, Tensor>;
type Params = ReturnType<typeof paramReader>['get'];
type OpResult = Tensor | Record<string, Tensor>;

/** Differentiable (and integer-output) ops: inputs by fixture name → engine result. */
const forwardOps: Record<string, (t: Inputs, p: Params) => OpResult> = {
  'torch.nn.functional.conv2d': (t, p) =>
    F.conv2d(t.x, t.w, t.b ?? null, { stride: p('stride'), padding: p('padding'), dilation: p('dilation'), groups: p('groups') }),
  'torch.nn.functional.batch_norm': (t, p) =>
    F.batchNorm(t.x, t.running_mean, t.running_var, t.weight, t.bias, { training: p('training'), momentum: p('momentum'), eps: p('eps') }),
  'torch.nn.functional.max_pool2d': (t, p) =>
    F.maxPool2d(t.x, p('kernel_size'), { stride: p('stride'), padding: p('padding') }),
  'torch.nn.functional.avg_pool2d': (t, p) =>
    F.avgPool2d(t.x, p('kernel_size'), { stride: p('stride'), padding: p('padding') }),
  'torch.nn.functional.adaptive_avg_pool2d': (t, p) => F.adaptiveAvgPool2d(t.x, p('output_size')),
  'torch.nn.functional.relu': (t) => F.relu(t.x),
  'torch.nn.functional.hardtanh': (t, p) => {
    // the engine exposes hardtanh only as relu6
    assert.equal(p<number>('min_val'), 0);
    assert.equal(p<number>('max_val'), 6);
    return F.relu6(t.x);
  },
  'torch.sigmoid': (t) => F.sigmoid(t.x),
  'torch.tanh': (t) => F.tanh(t.x),
  'torch.nn.functional.gelu': (t, p) => F.gelu(t.x, p('approximate')),
  'torch.softmax': (t, p) => F.softmax(t.x, p('dim')),
  'torch.log_softmax': (t, p) => F.logSoftmax(t.x, p('dim')),
  'torch.nn.functional.cross_entropy': (t, p) =>
    F.crossEntropy(t.input, t.target, { reduction: p('reduction'), labelSmoothing: p('label_smoothing') }),
  'torch.nn.functional.linear': (t) => F.linear(t.x, t.weight, t.bias ?? null),
  'torch.matmul': (t) => t.a.matmul(t.b),
  'torch.lstm_cell': (t) => {
    const [h, c] = F.lstmCell(t.x, t.h0, t.c0, t.w_ih, t.w_hh, t.b_ih, t.b_hh);
    return { h, c };
  },
  'torch.sum': (t, p) => {
    const dim = p<number | null>('dim', null);
    return dim === null ? t.x.sum() : t.x.sum(dim, p('keepdim'));
  },
  'torch.mean': (t, p) => {
    const dim = p<number | null>('dim', null);
    return dim === null ? t.x.mean() : t.x.mean(dim, p('keepdim'));
  },
  'torch.var': (t, p) => {
    const dim = p<number | null>('dim', null);
    return t.x.var(dim ?? undefined, { unbiased: p('unbiased'), keepdim: p('keepdim', false) });
  },
  'torch.max': (t, p) => {
    const [values, indices] = t.x.max(p('dim'), p('keepdim'));
    return { values, indices };
  },
  'torch.argmax': (t, p) => t.x.argmax(p('dim'), p('keepdim')),
  'torch.add': (t) => t.a.add(t.b),
  'torch.sub': (t) => t.a.sub(t.b),
  'torch.mul': (t) => t.a.mul(t.b),
  'torch.div': (t) => t.a.div(t.b),
  'torch.exp': (t) => t.x.exp(),
  'torch.log': (t) => t.x.log(),
  'torch.sqrt': (t) => t.x.sqrt(),
  'torch.pow': (t, p) => t.x.pow(p<number>('exponent')),
  'torch.clamp': (t, p) => t.x.clamp(p('min'), p('max')),
  'torch.linalg.svdvals': (t) => F.svdvals(t.A),
};

/** Per-case tolerances looser than the default, each with its reason. */
const looser: Record<string, { atol: number; rtol: number; why: string }> = {};

function runForwardCase(c: RefCase): void {
  const op = forwardOps[c.op];
  const { get, done } = paramReader(c);
  const differentiate = new Set(Object.keys(c.grads));
  for (const k of differentiate) assert.ok(k in c.inputs, `${c.name}: grads name an input '${k}' that is not there`);
  const tol = looser[c.name] ?? { atol: ATOL, rtol: RTOL };

  const inputs: Inputs = {};
  const upstream: Inputs = {};
  for (const [k, r] of Object.entries(c.inputs)) {
    if (k === 'g' || k.startsWith('g_')) upstream[k] = build(r);
    else inputs[k] = build(r, differentiate.has(k));
  }
  const out = op(inputs, get);
  done();

  // forward
  const outs: Record<string, Tensor> = out instanceof Tensor ? { '': out } : out;
  if (isRefTensor(c.output)) {
    assert.ok(out instanceof Tensor, `${c.name}: expected one output tensor`);
    expectClose(out, c.output, `${c.name} output`, tol.atol, tol.rtol);
  } else {
    assert.ok(!(out instanceof Tensor), `${c.name}: expected named outputs`);
    assert.deepEqual(Object.keys(outs).sort(), Object.keys(c.output).sort(), `${c.name}: output names`);
    for (const [k, r] of Object.entries(c.output)) expectClose(outs[k], r, `${c.name} output ${k}`, tol.atol, tol.rtol);
  }

  // running statistics updated in place by a training-mode batch norm
  if (c.state_after) {
    for (const [k, r] of Object.entries(c.state_after)) {
      assert.ok(inputs[k], `${c.name}: state_after names an unknown input '${k}'`);
      expectClose(inputs[k], r, `${c.name} ${k} after`, tol.atol, tol.rtol);
    }
  }

  // every other input is left as it was (e.g. an eval-mode batch norm keeps its running stats)
  for (const [k, t] of Object.entries(inputs)) {
    if (!c.state_after || !(k in c.state_after)) expectClose(t.detach(), c.inputs[k], `${c.name} input ${k} unchanged`, 0, 0);
  }

  // backward of sum_k (out_k * g_k)
  if (differentiate.size === 0) {
    assert.deepEqual(Object.keys(upstream), [], `${c.name}: upstream gradient without grads`);
    return;
  }
  let loss: Tensor | null = null;
  for (const [k, o] of Object.entries(outs)) {
    const gName = k === '' ? 'g' : `g_${k}`;
    if (o.dtype === 'int64') {
      assert.ok(!(gName in upstream), `${c.name}: integer output ${k} has an upstream gradient`);
      continue;
    }
    assert.ok(upstream[gName], `${c.name}: no upstream gradient '${gName}' for output '${k}'`);
    const term = o.mul(upstream[gName]).sum();
    loss = loss === null ? term : loss.add(term);
  }
  assert.ok(loss !== null, `${c.name}: nothing to differentiate`);
  loss.backward();
  for (const [k, r] of Object.entries(c.grads)) {
    const g = inputs[k].grad;
    assert.ok(g !== null, `${c.name}: input '${k}' got no gradient`);
    expectClose(g, r, `${c.name} d/d${k}`, tol.atol, tol.rtol);
  }
  for (const k of Object.keys(inputs)) {
    if (!differentiate.has(k)) assert.equal(inputs[k].grad, null, `${c.name}: '${k}' should not have a gradient`);
  }
}

function runOptimizerCase(c: RefCase): void {
  const { get, done } = paramReader(c);
  const p = new Parameter(build(c.inputs.p0));
  let opt: Optimizer;
  if (c.op === 'torch.optim.SGD') {
    opt = new SGD([p], {
      lr: get('lr'), momentum: get('momentum'), dampening: get('dampening'), nesterov: get('nesterov'), weightDecay: get('weight_decay'),
    });
  } else {
    assert.equal(get<boolean>('amsgrad'), false, 'AdamW: amsgrad is not implemented by the engine');
    opt = new AdamW([p], { lr: get('lr'), betas: get('betas'), eps: get('eps'), weightDecay: get('weight_decay') });
  }
  done();
  const outputs = c.output as Record<string, RefTensor>;
  const steps = Object.keys(c.inputs).filter((k) => /^g\d+$/.test(k)).length;
  assert.ok(steps > 0, `${c.name}: no gradient inputs`);
  assert.equal(Object.keys(outputs).length, steps, `${c.name}: one output per step`);
  try {
    for (let k = 1; k <= steps; k++) {
      p.grad = build(c.inputs[`g${k}`]);
      opt.step();
      expectClose(p.detach(), outputs[`p${k}`], `${c.name} parameter after step ${k}`);
    }
  } finally {
    p.dispose();
  }
}

function runScheduleCase(c: RefCase): void {
  const { get, done } = paramReader(c);
  const baseLr = get<number>('base_lr');
  const epochs = get<number>('epochs');
  let schedule: Schedule;
  if (c.op === 'torch.optim.lr_scheduler.CosineAnnealingLR') schedule = cosine(get('T_max'), get('eta_min'));
  else schedule = stepDecay(get('step_size'), get('gamma'));
  done();
  const p = new Parameter(tensor([0]));
  try {
    const opt = new SGD([p], { lr: baseLr });
    const sched = new LRScheduler(opt, schedule);
    const lrs: number[] = [];
    for (let e = 0; e < epochs; e++) {
      lrs.push(opt.groups[0].lr); // the lr used during epoch e
      sched.step();
    }
    const expected = (c.output as Record<string, RefTensor>).lrs;
    assert.equal(lrs.length, expected.data.length);
    // lrs are plain doubles on both sides; PyTorch's cosine is recursive, ours closed form
    lrs.forEach((lr, i) => assert.ok(Math.abs(lr - expected.data[i]) <= 1e-12 + 1e-12 * Math.abs(expected.data[i]),
      `${c.name}: epoch ${i} lr ${lr}, PyTorch ${expected.data[i]}`));
  } finally {
    p.dispose();
  }
}

const specialOps: Record<string, (c: RefCase) => void> = {
  'torch.optim.SGD': runOptimizerCase,
  'torch.optim.AdamW': runOptimizerCase,
  'torch.optim.lr_scheduler.CosineAnnealingLR': runScheduleCase,
  'torch.optim.lr_scheduler.StepLR': runScheduleCase,
};

test('fixture: format 1 from PyTorch 1.13 with unique, non-empty cases', () => {
  assert.equal(ref.format, 1);
  assert.match(ref.torch, /^1\.13/);
  assert.ok(ref.cases.length >= 53, `fixture has ${ref.cases.length} cases, expected at least 53`);
  const names = ref.cases.map((c) => c.name);
  assert.equal(new Set(names).size, names.length, 'case names are unique');
});

test('fixture: every case op has a handler', () => {
  const unhandled = ref.cases.filter((c) => !(c.op in forwardOps) && !(c.op in specialOps)).map((c) => `${c.name} (${c.op})`);
  assert.deepEqual(unhandled, [], `unhandled fixture cases: ${unhandled.join(', ')}`);
});

for (const c of ref.cases) {
  test(`reference: ${c.name} (${c.op})`, () => {
    tidy(() => {
      const special = specialOps[c.op];
      if (special) special(c);
      else if (forwardOps[c.op]) runForwardCase(c);
      else assert.fail(`no engine mapping for fixture case '${c.name}' (op ${c.op})`);
    });
  });
}
