/**
 * Representational similarity (src/analysis/similarity.ts): the properties CKA and SVCCA are known
 * for, and agreement with an independent numpy implementation (test/reference/similarity.py).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Tensor } from '../../src/engine/tensor';
import { manualSeed, randn } from '../../src/engine/random';
import { tensor } from '../../src/engine/creation';
import { setNumThreads } from '../../src/engine/runtime';
import { svd } from '../../src/nn/functional';
import { MinibatchCka, debiasedCka, hsicUnbiased, linearCka, svcca } from '../../src/analysis/similarity';
import { InputError } from '../../src/errors';

setNumThreads(1);

const ROOT = path.resolve(__dirname, '..', '..', '..');
const PYTHON = '/usr/bin/python3';
const f64 = { dtype: 'float64' as const };

function hasNumpy(): boolean {
  return spawnSync(PYTHON, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
}
const noNumpy = !hasNumpy() && `needs ${PYTHON} with numpy (the reference implementation)`;

/** A random orthogonal matrix (left singular vectors of a Gaussian one). */
function orthogonal(n: number): Tensor {
  const [u] = svd(randn([n, n], f64));
  return u;
}

/** y: a noisy linear function of x, so the similarity is neither 0 nor 1. */
function related(x: Tensor, q: number, noise: number): Tensor {
  return x.matmul(randn([x.shape[1], q], f64)).add(randn([x.shape[0], q], f64).mul(noise));
}

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (|Δ| ${Math.abs(a - b)} > ${tol})`);

test('CKA and SVCCA of a representation with itself are 1', () => {
  manualSeed(1);
  const x = randn([60, 12], f64);
  close(linearCka(x, x), 1, 1e-12, 'linear CKA');
  close(debiasedCka(x, x), 1, 1e-12, 'debiased CKA');
  close(svcca(x, x).svcca, 1, 1e-10, 'SVCCA');
});

test('CKA is symmetric and in [0, 1]; unrelated inputs score near 0 with the debiased form', () => {
  manualSeed(2);
  for (const [n, p, q] of [[40, 8, 5], [30, 100, 7], [50, 3, 3]]) {
    const x = randn([n, p], f64), y = related(x, q, 2), z = randn([n, q], f64);
    for (const [a, b] of [[x, y], [x, z]]) {
      const ab = linearCka(a, b), ba = linearCka(b, a);
      close(ab, ba, 1e-13, 'linear CKA symmetric');
      close(debiasedCka(a, b), debiasedCka(b, a), 1e-13, 'debiased CKA symmetric');
      close(svcca(a, b).svcca, svcca(b, a).svcca, 1e-10, 'SVCCA symmetric');
      assert.ok(ab >= 0 && ab <= 1, `CKA ${ab} in [0, 1]`);
    }
  }
  // Independent Gaussian features, wide against n: the biased form is far from 0, the debiased one is not.
  const x = randn([40, 200], f64), z = randn([40, 200], f64);
  assert.ok(linearCka(x, z) > 0.5, `biased CKA of unrelated wide features ${linearCka(x, z)} is inflated`);
  assert.ok(Math.abs(debiasedCka(x, z)) < 0.1, `debiased CKA ${debiasedCka(x, z)} near 0`);
});

test('CKA is invariant to orthogonal transforms and isotropic scaling, not to other linear maps', () => {
  manualSeed(3);
  const x = randn([50, 10], f64), y = related(x, 6, 1);
  const base = linearCka(x, y), baseD = debiasedCka(x, y);
  const moved = x.matmul(orthogonal(10)).mul(3.7);
  close(linearCka(moved, y), base, 1e-12, 'linear CKA after rotation and scaling');
  close(debiasedCka(moved, y), baseD, 1e-12, 'debiased CKA after rotation and scaling');
  close(linearCka(x, y.mul(0.01)), base, 1e-12, 'scaling the other side');
  // An anisotropic scaling changes it: the invariance checks above can fail.
  const stretch = x.mul(randn([1, 10], f64).abs().mul(5).add(0.1));
  assert.ok(Math.abs(linearCka(stretch, y) - base) > 1e-3, 'an anisotropic scaling changes CKA');
});

test('SVCCA of an invertible linear map of X is 1; a lossy map is not', () => {
  manualSeed(4);
  const x = randn([80, 6], f64);
  const a = randn([6, 6], f64).add(orthogonal(6).mul(3)); // well conditioned
  const r = svcca(x, x.matmul(a), { keep: 1 });
  close(r.svcca, 1, 1e-10, 'SVCCA(X, XA)');
  assert.equal(r.dimsX, 6);
  assert.equal(r.dimsY, 6);
  const lossy = svcca(x, x.narrow(1, 0, 3).add(randn([80, 3], f64)), { keep: 1 });
  assert.ok(lossy.svcca < 0.9, `SVCCA ${lossy.svcca} of a noisy projection is below 1`);
  // The 99% truncation keeps fewer directions when the spectrum decays.
  const decaying = x.mul(tensor([[1, 1, 1, 1e-3, 1e-3, 1e-3]], f64));
  assert.equal(svcca(decaying, x).dimsX, 3, 'the 99% threshold drops the weak directions');
  assert.equal(svcca(decaying, x, { keep: 1 }).dimsX, 6);
});

test('unbiased HSIC and the similarity functions reject bad shapes with an InputError', () => {
  manualSeed(5);
  const x = randn([10, 3], f64);
  assert.throws(() => linearCka(x, randn([9, 3], f64)), InputError);
  assert.throws(() => debiasedCka(x.narrow(0, 0, 3), x.narrow(0, 0, 3)), InputError);
  assert.throws(() => hsicUnbiased(randn([4, 5], f64), randn([4, 5], f64)), InputError);
  assert.throws(() => svcca(x, x, { keep: 0 }), InputError);
});

test('linear CKA, debiased CKA and SVCCA agree with the numpy reference', { skip: noNumpy }, () => {
  manualSeed(6);
  const cases: { x: Tensor; y: Tensor; keep: number }[] = [];
  for (const [n, p, q, noise, keep] of [[50, 8, 6, 1, 0.99], [30, 64, 16, 3, 0.99], [120, 20, 20, 0.5, 0.9], [25, 5, 40, 0.2, 1]]) {
    const x = randn([n, p], f64).add(2); // a mean the functions must remove
    cases.push({ x, y: related(x, q, noise), keep });
  }
  const input = JSON.stringify({ cases: cases.map((c) => ({ n: c.x.shape[0], x: c.x.toArray(), y: c.y.toArray(), keep: c.keep })) });
  const r = spawnSync(PYTHON, [path.join(ROOT, 'test', 'reference', 'similarity.py')], { input, encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr);
  const ref = JSON.parse(r.stdout).results as { cka: number; ckaDebiased: number; svcca: number; dimsX: number; dimsY: number }[];
  cases.forEach((c, i) => {
    close(linearCka(c.x, c.y), ref[i].cka, 1e-10, `case ${i} linear CKA`);
    close(debiasedCka(c.x, c.y), ref[i].ckaDebiased, 1e-10, `case ${i} debiased CKA`);
    const s = svcca(c.x, c.y, { keep: c.keep });
    assert.equal(s.dimsX, ref[i].dimsX, `case ${i} directions kept on X`);
    assert.equal(s.dimsY, ref[i].dimsY, `case ${i} directions kept on Y`);
    close(s.svcca, ref[i].svcca, 1e-8, `case ${i} SVCCA`);
  });
});

test('minibatch CKA: one batch is the full-set CKA; several batches agree with the numpy reference', { skip: noNumpy }, () => {
  manualSeed(7);
  const x = randn([60, 30], f64), y = related(x, 12, 2);
  const one = new MinibatchCka();
  one.add(x, y);
  close(one.result().cka, linearCka(x, y), 1e-12, 'one batch, biased');
  close(one.result().ckaDebiased, debiasedCka(x, y), 1e-12, 'one batch, debiased');
  const mb = new MinibatchCka();
  for (let i = 0; i < 60; i += 15) mb.add(x.narrow(0, i, 15), y.narrow(0, i, 15));
  assert.equal(mb.batches, 4);
  assert.throws(() => mb.add(x.narrow(0, 0, 3), y.narrow(0, 0, 3)), InputError);
  const input = JSON.stringify({ cases: [{ n: 60, x: x.toArray(), y: y.toArray(), keep: 0.99, batch: 15 }] });
  const r = spawnSync(PYTHON, [path.join(ROOT, 'test', 'reference', 'similarity.py')], { input, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const ref = JSON.parse(r.stdout).results[0];
  close(mb.result().cka, ref.mbCka, 1e-10, 'minibatch CKA');
  close(mb.result().ckaDebiased, ref.mbCkaDebiased, 1e-10, 'minibatch debiased CKA');
  assert.ok(Math.abs(mb.result().cka - linearCka(x, y)) > 1e-3, 'batching changes the biased estimate (the comparison is not trivial)');
});
