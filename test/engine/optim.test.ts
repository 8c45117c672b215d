/**
 * Optimisers and learning-rate schedules against updates written out by hand, in plain JS numbers,
 * for a 3-element parameter over a few steps. Parameters are float64 so the engine's arithmetic can
 * be held to 1e-12 of the hand-computed values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Tensor, tensor, Parameter, SGD, AdamW, LRScheduler, constant, stepDecay, multiStep, cosine, warmup,
} from '../../src/index';

const P0 = [1, -2, 0.5];
const G = [[0.5, -1, 2], [-0.25, 0.75, 1], [1, 0, -0.5]];

const param = (v: number[]): Parameter => new Parameter(tensor(v, { dtype: 'float64' }));
const f64 = (v: number[]): Tensor => tensor(v, { dtype: 'float64' });
const values = (p: Tensor): number[] => p.detach().toArray();

function assertClose(actual: number[], expected: number[], what: string, tol = 1e-12): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]) <= tol * (1 + Math.abs(expected[i])),
    `${what}[${i}]: got ${a}, expected ${expected[i]}`));
}

/** Runs the optimiser over the gradients in G, checking the parameter after each step. */
function run(make: (p: Parameter) => { step(): void }, expected: number[][], what: string): void {
  const p = param(P0);
  try {
    const opt = make(p);
    expected.forEach((e, k) => {
      p.grad = f64(G[k]);
      opt.step();
      assertClose(values(p), e, `${what} after step ${k + 1}`);
    });
  } finally {
    p.dispose();
  }
}

test('SGD plain: p ← p − lr·g', () => {
  // lr 0.1: [1,-2,0.5] − 0.1·[0.5,-1,2] = [0.95,-1.9,0.3]; − 0.1·[-0.25,0.75,1] = [0.975,-1.975,0.2];
  // − 0.1·[1,0,-0.5] = [0.875,-1.975,0.25]
  run((p) => new SGD([p], { lr: 0.1 }), [[0.95, -1.9, 0.3], [0.975, -1.975, 0.2], [0.875, -1.975, 0.25]], 'sgd');
});

test('SGD with momentum: buf ← m·buf + g (buf₁ = g₁), p ← p − lr·buf', () => {
  const lr = 0.1, m = 0.9;
  const b1 = G[0];
  const p1 = P0.map((p, i) => p - lr * b1[i]);
  const b2 = b1.map((b, i) => m * b + G[1][i]);
  const p2 = p1.map((p, i) => p - lr * b2[i]);
  const b3 = b2.map((b, i) => m * b + G[2][i]);
  const p3 = p2.map((p, i) => p - lr * b3[i]);
  // spot check of the arithmetic above: p2[0] = 0.95 − 0.1·(0.45 − 0.25) = 0.93
  assert.ok(Math.abs(p2[0] - 0.93) < 1e-15);
  run((p) => new SGD([p], { lr, momentum: m }), [p1, p2, p3], 'sgd momentum');
});

test('SGD with momentum and dampening: buf ← m·buf + (1 − d)·g, the first buf undamped', () => {
  const lr = 0.1, m = 0.5, d = 0.25;
  const b1 = G[0];
  const p1 = P0.map((p, i) => p - lr * b1[i]);
  const b2 = b1.map((b, i) => m * b + (1 - d) * G[1][i]);
  const p2 = p1.map((p, i) => p - lr * b2[i]);
  run((p) => new SGD([p], { lr, momentum: m, dampening: d }), [p1, p2], 'sgd dampening');
});

test('SGD nesterov: p ← p − lr·(g + m·buf)', () => {
  const lr = 0.1, m = 0.9;
  const b1 = G[0];
  const p1 = P0.map((p, i) => p - lr * (G[0][i] + m * b1[i]));
  const b2 = b1.map((b, i) => m * b + G[1][i]);
  const p2 = p1.map((p, i) => p - lr * (G[1][i] + m * b2[i]));
  const b3 = b2.map((b, i) => m * b + G[2][i]);
  const p3 = p2.map((p, i) => p - lr * (G[2][i] + m * b3[i]));
  // first step: 1 − 0.1·(0.5 + 0.9·0.5) = 0.905
  assert.ok(Math.abs(p1[0] - 0.905) < 1e-15);
  run((p) => new SGD([p], { lr, momentum: m, nesterov: true }), [p1, p2, p3], 'sgd nesterov');
});

test('SGD nesterov without momentum is rejected', () => {
  const p = param(P0);
  try {
    assert.throws(() => new SGD([p], { lr: 0.1, nesterov: true }), /nesterov/);
  } finally {
    p.dispose();
  }
});

test('SGD weight decay (coupled): d = g + wd·p, plain and with momentum', () => {
  const lr = 0.1, wd = 0.2, m = 0.9;
  // plain: p1 = p0 − lr·(g1 + wd·p0); first element 1 − 0.1·(0.5 + 0.2) = 0.93
  const q1 = P0.map((p, i) => p - lr * (G[0][i] + wd * p));
  const q2 = q1.map((p, i) => p - lr * (G[1][i] + wd * p));
  assert.ok(Math.abs(q1[0] - 0.93) < 1e-15);
  run((p) => new SGD([p], { lr, weightDecay: wd }), [q1, q2], 'sgd weight decay');
  // momentum: the decayed gradient goes into the buffer
  const d1 = P0.map((p, i) => G[0][i] + wd * p);
  const p1 = P0.map((p, i) => p - lr * d1[i]);
  const b2 = d1.map((b, i) => m * b + (G[1][i] + wd * p1[i]));
  const p2 = p1.map((p, i) => p - lr * b2[i]);
  run((p) => new SGD([p], { lr, momentum: m, weightDecay: wd }), [p1, p2], 'sgd momentum + weight decay');
});

test('SGD in one group: a parameter without a gradient is left alone, one whose gradient comes later starts its own buffer then', () => {
  // Parameters of one group at different stages (no gradient, a fresh buffer, an old buffer) in
  // the same step must not mix: what an update of the group as one list would get wrong.
  const lr = 0.1, m = 0.9, wd = 0.2;
  const a = param(P0), b = param([3, -1]);
  try {
    const opt = new SGD([a, b], { lr, momentum: m, weightDecay: wd });
    a.grad = f64(G[0]);
    opt.step();
    const da1 = P0.map((p, i) => G[0][i] + wd * p);
    const a1 = P0.map((p, i) => p - lr * da1[i]);
    assertClose(values(a), a1, 'a after step 1');
    assertClose(values(b), [3, -1], 'b has no gradient at step 1: unchanged, no decay');
    a.grad = f64(G[1]);
    b.grad = f64([0.5, 2]);
    opt.step();
    const ba2 = da1.map((x, i) => m * x + (G[1][i] + wd * a1[i]));
    assertClose(values(a), a1.map((p, i) => p - lr * ba2[i]), 'a after step 2 (old buffer)');
    // b's first step: its buffer starts at d = g + wd·p, not m·0 + d damped
    assertClose(values(b), [3 - lr * (0.5 + wd * 3), -1 - lr * (2 + wd * -1)], 'b after step 2 (fresh buffer)');
  } finally {
    a.dispose();
    b.dispose();
  }
});

test('AdamW: decoupled decay, bias-corrected moments', () => {
  const lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
  let p = P0.slice();
  let m = [0, 0, 0], v = [0, 0, 0];
  const expected: number[][] = [];
  for (let t = 1; t <= 3; t++) {
    const g = G[t - 1];
    p = p.map((x) => x * (1 - lr * wd));
    m = m.map((mi, i) => b1 * mi + (1 - b1) * g[i]);
    v = v.map((vi, i) => b2 * vi + (1 - b2) * g[i] * g[i]);
    const bc1 = 1 - b1 ** t, bc2 = 1 - b2 ** t;
    p = p.map((x, i) => x - (lr / bc1) * m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + eps));
    expected.push(p.slice());
  }
  // step 1 moves each element by ≈ lr·sign(g) (m̂/√v̂ = g/|g|) after the decay: 1·0.999 − 0.01
  assert.ok(Math.abs(expected[0][0] - (0.999 - 0.01)) < 1e-9);
  run((q) => new AdamW([q], { lr, betas: [b1, b2], eps, weightDecay: wd }), expected, 'adamw');
});

test('AdamW defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2', () => {
  const p = param([2]);
  try {
    const opt = new AdamW([p]);
    assert.equal(opt.groups[0].lr, 1e-3);
    assert.equal(opt.groups[0].weightDecay, 1e-2);
    assert.deepEqual(opt.groups[0].betas, [0.9, 0.999]);
    assert.equal(opt.groups[0].eps, 1e-8);
    p.grad = f64([-3]);
    opt.step();
    // 2·(1 − 1e-3·1e-2) + 1e-3·3/(3 + 1e-8)
    assertClose(values(p), [2 * (1 - 1e-5) + 1e-3 * 3 / (3 + 1e-8)], 'adamw default step');
  } finally {
    p.dispose();
  }
});

test('parameter groups: each group steps with its own lr and weight decay', () => {
  const a = param([1, 2, 3]), b = param([1, 2, 3]), c = param([1, 2, 3]);
  try {
    const opt = new SGD([{ params: [a], lr: 0.1 }, { params: [b], lr: 0.01, weightDecay: 0.5 }, { params: [c] }], { lr: 1 });
    assert.deepEqual(opt.groups.map((g) => g.lr), [0.1, 0.01, 1]);
    assert.deepEqual(opt.groups.map((g) => g.weightDecay), [0, 0.5, 0]);
    for (const p of [a, b, c]) p.grad = f64([1, 1, 1]);
    opt.step();
    assertClose(values(a), [0.9, 1.9, 2.9], 'group 0 (lr 0.1)');
    // 1 − 0.01·(1 + 0.5·1) = 0.985, 2 − 0.01·(1 + 1) = 1.98, 3 − 0.01·2.5 = 2.975
    assertClose(values(b), [0.985, 1.98, 2.975], 'group 1 (lr 0.01, wd 0.5)');
    assertClose(values(c), [0, 1, 2], 'group 2 (default lr 1)');
  } finally {
    for (const p of [a, b, c]) p.dispose();
  }
});

test('parameter groups in AdamW: the first step moves each group by its own lr only', () => {
  const a = param([1, -1, 2]), b = param([1, -1, 2]);
  try {
    const opt = new AdamW([{ params: [a], lr: 0.1 }, { params: [b], lr: 0.001 }], { weightDecay: 0 });
    a.grad = f64([0.3, -2, 5]);
    b.grad = f64([0.3, -2, 5]);
    opt.step();
    // |Δ| = lr·|g|/(|g| + eps) ≈ lr, against the sign of g
    assertClose(values(a), [1 - 0.1, -1 + 0.1, 2 - 0.1], 'group a', 1e-7);
    assertClose(values(b), [1 - 0.001, -1 + 0.001, 2 - 0.001], 'group b', 1e-7);
  } finally {
    a.dispose();
    b.dispose();
  }
});

test('a parameter in two groups is rejected', () => {
  const a = param([1]);
  try {
    assert.throws(() => new SGD([{ params: [a] }, { params: [a] }], { lr: 0.1 }), /more than one group/);
  } finally {
    a.dispose();
  }
});

test('zeroGrad sets every gradient to null; a parameter without gradient is not stepped', () => {
  const a = param([1, 2, 3]), b = param([4, 5, 6]);
  try {
    const opt = new SGD([{ params: [a] }, { params: [b], lr: 0.5 }], { lr: 0.1, momentum: 0.9 });
    a.grad = f64([1, 1, 1]);
    b.grad = f64([2, 2, 2]);
    assert.notEqual(a.grad, null);
    opt.zeroGrad();
    assert.equal(a.grad, null);
    assert.equal(b.grad, null);
    opt.step();
    assertClose(values(a), [1, 2, 3], 'a untouched');
    assertClose(values(b), [4, 5, 6], 'b untouched');
    // only a gets a gradient: b stays put
    a.grad = f64([1, 0, -1]);
    opt.step();
    assertClose(values(a), [0.9, 2, 3.1], 'a stepped');
    assertClose(values(b), [4, 5, 6], 'b still untouched');
  } finally {
    a.dispose();
    b.dispose();
  }
});

test('optimiser step after backward: gradient of sum(p²) is 2p; the step records no graph', () => {
  const p = param([1, -2, 0.5]);
  try {
    const opt = new SGD([p], { lr: 0.25 });
    p.mul(p).sum().backward();
    assertClose(p.grad!.toArray(), [2, -4, 1], 'grad');
    opt.step();
    // p − 0.25·2p = p/2
    assertClose(values(p), [0.5, -1, 0.25], 'after step');
    assert.equal(p.isLeaf, true, 'the parameter stays a leaf');
    assert.equal(p.requiresGrad, true);
  } finally {
    p.dispose();
  }
});

// ---- schedules ----

const lrsOf = (s: (base: number, t: number) => number, base: number, n: number) => Array.from({ length: n }, (_, t) => s(base, t));

test('schedule constant and stepDecay (StepLR)', () => {
  assert.deepEqual(lrsOf(constant(), 0.3, 4), [0.3, 0.3, 0.3, 0.3]);
  // base·gamma^⌊t/3⌋ with base 0.2, gamma 0.5
  assertClose(lrsOf(stepDecay(3, 0.5), 0.2, 8), [0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05], 'stepDecay');
  // default gamma 0.1
  assertClose(lrsOf(stepDecay(2), 1, 5), [1, 1, 0.1, 0.1, 0.01], 'stepDecay default gamma');
});

test('schedule multiStep: every milestone applies', () => {
  assertClose(lrsOf(multiStep([2, 5], 0.1), 1, 8), [1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01], 'multiStep');
  // milestone order does not matter; gamma 0.5
  assertClose(lrsOf(multiStep([4, 1, 2], 0.5), 0.8, 6), [0.8, 0.4, 0.2, 0.2, 0.1, 0.1], 'multiStep unsorted');
});

test('schedule cosine: etaMin + (base − etaMin)(1 + cos(πt/T))/2', () => {
  // base 0.1, etaMin 0.01, T 4; cos(π/4) = 0.7071067811865476
  assertClose(lrsOf(cosine(4, 0.01), 0.1, 5),
    [0.1, 0.01 + 0.09 * (1 + 0.7071067811865476) / 2, 0.055, 0.01 + 0.09 * (1 - 0.7071067811865476) / 2, 0.01], 'cosine');
  assertClose(lrsOf(cosine(2), 1, 3), [1, 0.5, 0], 'cosine etaMin 0');
});

test('schedule warmup: linear from base·startFactor, then the inner schedule from 0', () => {
  // 2 warm-up steps from 0.1: 0.1, 0.1 + 0.9·1/2; then cosine(4) counted from t − 2
  const c = 0.7071067811865476;
  assertClose(lrsOf(warmup(2, cosine(4), 0.1), 1, 7), [0.1, 0.55, 1, (1 + c) / 2, 0.5, (1 - c) / 2, 0], 'warmup → cosine');
  // default start factor 0.1, into stepDecay: base 0.5, 4 warm-up steps
  assertClose(lrsOf(warmup(4, stepDecay(1, 0.5)), 0.5, 6), [0.05, 0.1625, 0.275, 0.3875, 0.5, 0.25], 'warmup → stepDecay');
});

test('LRScheduler sets each group from its own base lr, and step() uses the scheduled lr', () => {
  const a = param([0, 0, 0]), b = param([0, 0, 0]);
  try {
    const opt = new SGD([{ params: [a], lr: 0.1 }, { params: [b], lr: 0.01 }], { lr: 1 });
    const sched = new LRScheduler(opt, multiStep([1, 2], 0.5));
    assert.deepEqual(sched.baseLrs, [0.1, 0.01]);
    const seen: number[][] = [];
    for (let e = 0; e < 4; e++) {
      seen.push(sched.lrs);
      a.grad = f64([1, 1, 1]);
      b.grad = f64([1, 1, 1]);
      opt.step();
      sched.step();
    }
    assert.equal(sched.t, 4);
    assertClose(seen.map((l) => l[0]), [0.1, 0.05, 0.025, 0.025], 'group 0 lrs');
    assertClose(seen.map((l) => l[1]), [0.01, 0.005, 0.0025, 0.0025], 'group 1 lrs');
    // a moved by −(0.1 + 0.05 + 0.025 + 0.025), b by a tenth of that
    assertClose(values(a), [-0.2, -0.2, -0.2], 'a after 4 epochs');
    assertClose(values(b), [-0.02, -0.02, -0.02], 'b after 4 epochs');
  } finally {
    a.dispose();
    b.dispose();
  }
});
