/**
 * AdaFilter's cheaper computation paths give the same numbers as the straightforward ones: the gate's
 * pooling, separate vs fused paths (training and evaluation), and path skipping with one-sided gates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/engine/tensor';
import { manualSeed, randn, randint } from '../../src/engine/random';
import { noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { setNumThreads } from '../../src/engine/runtime';
import { globalAvgPool } from '../../src/nn/functional';
import { applyMethod, AdaFilterModel } from '../../src/methods';
import { gatePool, lstmStepOneDnn } from '../../src/methods/adafilter/gate';
import { cat } from '../../src/engine/creation';
import { lstmCell } from '../../src/nn/functional';
import { LSTMCell } from '../../src/nn/lstm-cell';
import { fakePretrained, maxAbsDiff, perturb, trainPass } from './helpers';

setNumThreads(2);

const ada = (name = 'adafilter', o: Record<string, unknown> = {}, seed = 1) =>
  applyMethod(name, fakePretrained(seed), 5, o) as AdaFilterModel;

test('gate pooling: sum/(H·W) has exactly the values and input gradient of the global average pool', () => {
  manualSeed(30);
  for (const shape of [[4, 16, 32, 32], [3, 64, 8, 8], [2, 7, 5, 3]]) {
    const x = randn(shape).mul(3).add(0.5);
    const w = randn([shape[0], shape[1]]);
    const a = x.detach().requiresGrad_(true), b = x.detach().requiresGrad_(true);
    const pa = gatePool(a, false), pb = globalAvgPool(b);
    assert.equal(maxAbsDiff(pa, pb), 0, `values ${shape}`);
    tidy(() => { pa.mul(w).sum().backward(); pb.mul(w).sum().backward(); });
    assert.equal(maxAbsDiff(a.grad!, b.grad!), 0, `gradients ${shape}`);
    // no gradient wanted: the plain pool, detached when asked
    assert.equal(gatePool(a, true).requiresGrad, false);
    assert.equal(maxAbsDiff(noGrad(() => gatePool(a, false)), pb), 0);
  }
});

test('training LSTM step through oneDNN = aten::lstm_cell: values and gradients within 1e-5', (t) => {
  if (!tidy(() => lstmStepOneDnn(randn([2, 3]), randn([2, 4]), randn([2, 4]), randn([16, 7]), null) !== null)) {
    t.skip('libtorch without oneDNN: the gate uses aten::lstm_cell');
    return;
  }
  manualSeed(35);
  const cell = new LSTMCell(8, 16);
  const x0 = randn([5, 8]), h0 = randn([5, 16]), c0 = randn([5, 16]), w = randn([5, 16]);
  const params = [cell.weight_ih, cell.weight_hh, cell.bias_ih!, cell.bias_hh!];
  const run = (fused: boolean) => tidy(() => {
    for (const p of params) p.grad = null;
    const x = x0.detach().requiresGrad_(true), h = h0.detach().requiresGrad_(true), c = c0.detach().requiresGrad_(true);
    let s: [Tensor, Tensor] = [h, c];
    for (let i = 0; i < 3; i++) {
      s = fused
        ? lstmStepOneDnn(x, s[0], s[1], cat([cell.weight_ih, cell.weight_hh], 1), cell.bias_ih!.add(cell.bias_hh!))!
        : lstmCell(x, s[0], s[1], cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh);
    }
    s[0].mul(w).sum().add(s[1].mul(w).square().sum()).backward();
    return [s[0], s[1], x.grad!, h.grad!, c.grad!, ...params.map((p) => p.grad!)].map((t) => t.detach().clone());
  });
  const ref = run(false);
  const got = run(true);
  ref.forEach((r, i) => {
    const scale = 1 + tidy(() => r.abs().max().item());
    assert.ok(maxAbsDiff(r, got[i]) < 1e-5 * scale, `output ${i}: ${maxAbsDiff(r, got[i])}`);
  });
  cell.dispose();
});

test('separate paths are the default; fused and separate agree in evaluation too', () => {
  const a = ada(), b = ada('adafilter', { fusedPaths: true });
  assert.ok(a.gated.every((g) => !g.fused) && b.gated.every((g) => g.fused));
  perturb(a);
  b.loadStateDict(a.stateDict());
  a.eval(); b.eval();
  manualSeed(31);
  const x = randn([4, 3, 16, 16]);
  const ya = noGrad(() => a.forward(x)), yb = noGrad(() => b.forward(x));
  assert.ok(maxAbsDiff(ya, yb) < 1e-5, `evaluation outputs differ by ${maxAbsDiff(ya, yb)}`);
  a.dispose(); b.dispose();
});

test('the frozen S weights get no gradient while the input gradient flows through both paths', () => {
  const m = ada();
  perturb(m);
  manualSeed(32);
  const x = randn([2, 3, 16, 16]).requiresGrad_(true), y = randint(0, 5, [2]);
  m.train();
  tidy(() => m.loss(m.run(x), y).backward());
  for (const g of m.gated) {
    assert.equal(g.weight_s.requiresGrad, false);
    assert.equal(g.weight_s.grad, null);
    assert.notEqual(g.weight_f.grad, null);
  }
  assert.ok(tidy(() => x.grad!.abs().sum().item()) > 0);
  m.dispose();
});

/** Gradients of every parameter after one training pass, by name (null: none). */
function grads(m: AdaFilterModel): Map<string, Tensor | null> {
  return new Map(m.namedParameters().map(([k, p]) => [k, p.grad]));
}

for (const force of [0, 1] as const) {
  for (const fused of [false, true]) {
    test(`training with every gate ${force} (fused ${fused}): skipping the unused path changes no output and no gradient`, () => {
      const a = ada('adafilter', { forceGates: force, skipPaths: 'exact', fusedPaths: fused });
      const b = ada('adafilter', { forceGates: force, skipPaths: 'never', fusedPaths: fused });
      perturb(a);
      b.loadStateDict(a.stateDict());
      manualSeed(33);
      const x = randn([4, 3, 16, 16]), y = randint(0, 5, [4]);
      const ya = trainPass(a, x, y, 34), yb = trainPass(b, x, y, 34);
      assert.ok(maxAbsDiff(ya, yb) <= (fused ? 1e-5 : 0), 'outputs');
      const ga = grads(a), gb = grads(b);
      for (const [k, t] of ga) {
        const u = gb.get(k)!;
        if (!t && !u) continue;
        if (t && u) {
          // separate paths: bit-identical; fused: 'never' runs the 2C convolution, whose larger GEMMs
          // round differently from the single path's
          const tol = fused ? 1e-5 * (1 + tidy(() => u.abs().max().item())) : 0;
          assert.ok(maxAbsDiff(t, u) <= tol, `${k}: ${maxAbsDiff(t, u)}`);
        } else {
          // the skipped path's BN has no gradient; computed, it is exactly zero
          const other = t ?? u;
          if (other) assert.equal(tidy(() => other.abs().max().item()), 0, `${k}: zero when computed`);
          assert.ok(/\.norm\.bn_[fs]\./.test(k) || k.endsWith('.weight_f') || k.startsWith('gate.'), k);
        }
      }
      a.dispose(); b.dispose();
    });
  }
}
