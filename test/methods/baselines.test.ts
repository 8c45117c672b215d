import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/engine/tensor';
import { tensor as mk } from '../../src/engine/creation';
import { manualSeed, randn, randint } from '../../src/engine/random';
import { tidy } from '../../src/engine/scope';
import { setNumThreads } from '../../src/engine/runtime';
import { SGD } from '../../src/optim/sgd';
import { applyMethod, methodNames, l2spPenalty, bssPenalty } from '../../src/methods';
import { fakePretrained, snapshot, step, trainedNames, withGrad } from './helpers';

setNumThreads(2);



test('registry lists the methods and rejects unknown names and options', () => {
  for (const n of ['linear-probe', 'finetune', 'l2sp', 'bss', 'adafilter', 'adafilter-nogbn', 'random-filter', 'adafilter-static', 'spottune']) {
    assert.ok(methodNames().includes(n), n);
  }
  assert.throws(() => applyMethod('nope', fakePretrained(), 3), /unknown method 'nope'/);
  assert.throws(() => applyMethod('l2sp', fakePretrained(), 3, { alpah: 1 }), /unknown option 'alpah'/);
});

test('linear-probe: only the head trains; backbone (BN statistics too) bit-identical after steps', () => {
  const m = applyMethod('linear-probe', fakePretrained(1), 5);
  manualSeed(2);
  const x = randn([4, 3, 16, 16]), y = randint(0, 5, [4]);
  const before = snapshot(m);
  m.train();
  assert.ok(m.backbone.modules().filter((mod) => mod !== m.head).every((mod) => !mod.training), 'backbone in eval');
  assert.ok(m.head.training);
  const opt = new SGD(m.paramGroups({ lr: 0.1 }), { lr: 0.1, momentum: 0.9 });
  for (let i = 0; i < 3; i++) step(m, opt, x, y);
  const after = snapshot(m);
  for (const [k, v] of before) {
    if (k.startsWith('backbone.fc.')) assert.notDeepEqual(after.get(k), v, k);
    else assert.deepEqual(after.get(k), v, k);
  }
  assert.deepEqual(withGrad(m, x, y), new Set(['backbone.fc.weight', 'backbone.fc.bias']));
  const c = m.parameterCounts();
  assert.equal(c.trainable, 64 * 5 + 5);
  m.dispose();
});

test('finetune: gradients reach every backbone parameter and the new head; no decay on BN', () => {
  const m = applyMethod('finetune', fakePretrained(1), 5);
  manualSeed(3);
  const x = randn([4, 3, 16, 16]), y = randint(0, 5, [4]);
  const all = new Set(m.namedParameters().map(([k]) => k));
  assert.deepEqual(trainedNames(m), all);
  assert.deepEqual(withGrad(m, x, y), all);
  assert.equal(m.head.weight.shape[0], 5);
  const groups = m.paramGroups({ lr: 0.1, headLr: 1, weightDecay: 1e-4 });
  const byName = Object.fromEntries(groups.map((g) => [g.name as string, g]));
  assert.equal(byName.backbone_no_decay.weightDecay, 0);
  assert.equal(byName.backbone.weightDecay, 1e-4);
  assert.equal(byName.head.lr, 1);
  assert.equal(byName.backbone_no_decay.params.length, 21 * 2); // 21 BN layers in resnet20 (2 in shortcuts)
  m.dispose();
});

test('l2sp: penalty zero at initialisation, alpha·(w − w0) gradient after a step, no weight decay', () => {
  const m = applyMethod('l2sp', fakePretrained(1), 5, { alpha: 0.1, beta: 0 });
  // L2-SP's term reads the weights only: a pass of bare logits will do.
  const bare = () => ({ logits: mk([0]), gates: [] });
  assert.equal(tidy(() => m.extraLoss(bare())!.item()), 0);
  assert.ok(m.paramGroups({ lr: 0.1 }).every((g) => g.weightDecay === 0));
  manualSeed(4);
  const x = randn([4, 3, 16, 16]), y = randint(0, 5, [4]);
  const opt = new SGD(m.paramGroups({ lr: 0.05 }), { lr: 0.05 });
  step(m, opt, x, y);
  const w = m.backbone.parameters()[0];
  for (const p of m.parameters()) p.grad = null;
  tidy(() => m.extraLoss(bare())!.backward());
  const [, w0] = (m as any).reference[0] as [Tensor, Tensor];
  const expected = tidy(() => w.sub(w0).mul(0.1).toArray());
  const got = tidy(() => w.grad!.toArray());
  got.forEach((g, i) => assert.ok(Math.abs(g - expected[i]) < 1e-7, `${g} vs ${expected[i]}`));
  assert.ok(expected.some((v) => v !== 0));
  m.dispose();
});

test('l2sp penalty gradient matches central finite differences (float64)', () => {
  manualSeed(5);
  const w = randn([3, 4], { dtype: 'float64' }).requiresGrad_(true);
  const w0 = randn([3, 4], { dtype: 'float64' });
  const h = randn([2, 3], { dtype: 'float64' }).requiresGrad_(true);
  const [alpha, beta] = [0.07, 0.02];
  tidy(() => l2spPenalty([[w, w0]], [h], alpha, beta).backward());
  const f = (wv: number[], hv: number[]) => tidy(() =>
    l2spPenalty([[mk(wv, { dtype: 'float64', shape: [3, 4] }), w0]], [mk(hv, { dtype: 'float64', shape: [2, 3] })], alpha, beta).item());
  const wv = w.toArray(), hv = h.toArray();
  const gw = w.grad!.toArray(), gh = h.grad!.toArray();
  const eps = 1e-6;
  for (let i = 0; i < wv.length; i++) {
    const a = [...wv], b = [...wv];
    a[i] += eps; b[i] -= eps;
    const fd = (f(a, hv) - f(b, hv)) / (2 * eps);
    assert.ok(Math.abs(fd - gw[i]) < 1e-7 * (1 + Math.abs(fd)), `w[${i}]: ${fd} vs ${gw[i]}`);
  }
  for (let i = 0; i < hv.length; i++) {
    const a = [...hv], b = [...hv];
    a[i] += eps; b[i] -= eps;
    const fd = (f(wv, a) - f(wv, b)) / (2 * eps);
    assert.ok(Math.abs(fd - gh[i]) < 1e-7 * (1 + Math.abs(fd)), `h[${i}]: ${fd} vs ${gh[i]}`);
  }
});

/** Eigenvalues of a symmetric matrix by the cyclic Jacobi method, in plain JS. */
function jacobiEigenvalues(a: number[][]): number[] {
  const n = a.length;
  const m = a.map((r) => [...r]);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p][q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(m[p][q]) < 1e-300) continue;
        const theta = (m[q][q] - m[p][p]) / (2 * m[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const mkp = m[k][p], mkq = m[k][q];
          m[k][p] = c * mkp - s * mkq;
          m[k][q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p][k], mqk = m[q][k];
          m[p][k] = c * mpk - s * mqk;
          m[q][k] = s * mpk + c * mqk;
        }
      }
    }
  }
  return m.map((r, i) => r[i]).sort((x, y) => x - y);
}

test('bss penalty equals eta × the k smallest eigenvalues of XXᵀ computed in plain JS', () => {
  manualSeed(6);
  const [n, d] = [6, 10];
  const x = randn([n, d], { dtype: 'float64' });
  const xv = x.toArray();
  const gram = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => {
    let s = 0;
    for (let k = 0; k < d; k++) s += xv[i * d + k] * xv[j * d + k];
    return s;
  }));
  const eig = jacobiEigenvalues(gram); // squared singular values, ascending
  for (const k of [1, 2]) {
    const got = tidy(() => bssPenalty(x, k, 0.001).item());
    const want = 0.001 * eig.slice(0, k).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(got - want) < 1e-12 * (1 + Math.abs(want)), `k=${k}: ${got} vs ${want}`);
  }
});

test('bss: the method adds the penalty of the batch features in training, nothing in eval', () => {
  const m = applyMethod('bss', fakePretrained(1), 5, { eta: 0.5 });
  manualSeed(7);
  const x = randn([4, 3, 16, 16]), y = randint(0, 5, [4]);
  m.train();
  const [extra, expect] = tidy(() => {
    const e = m.extraLoss(m.run(x))!.item(); // the penalty of this pass's features
    const f = m.backbone.features(x);
    return [e, bssPenalty(f, 1, 0.5).item()];
  });
  assert.ok(extra > 0 && Math.abs(extra - expect) < 1e-4 * expect, `${extra} vs ${expect}`);
  const all = new Set(m.namedParameters().map(([k]) => k));
  assert.deepEqual(withGrad(m, x, y), all);
  m.eval();
  assert.equal(tidy(() => m.extraLoss(m.run(x))), null);
  assert.throws(() => { m.train(); tidy(() => m.loss({ logits: m.forward(x), gates: [] }, y)); }, /needs the pass's features/, 'a pass without features has nothing to penalise');
  m.dispose();
});
