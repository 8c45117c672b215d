/**
 * Autograd against central finite differences in float64, independent of any PyTorch recording.
 * The scalar checked is L = sum(f(inputs) * G) for a fixed random G (so ops whose plain sum is
 * constant, like softmax, still get a non-trivial gradient). Each input element (or a deterministic,
 * evenly spread subset for bigger inputs) is moved by ±h, h = 1e-6, and
 *   |(L(x+h) − L(x−h)) / 2h − dL/dx| ≤ 1e-6 · (1 + |dL/dx|).
 * In float64 the truncation error is O(h²) ≈ 1e-12 and the rounding error ≈ 1e-16·|L|/h ≈ 1e-9 for
 * the |L| ≲ 10 used here, so the bound has ample room while a wrong gradient is far outside it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tensor, tidy, noGrad, F } from '../../src/index';

const H = 1e-6;
const TOL = 1e-6;

/** Deterministic normal samples (mulberry32 + Box–Muller), so failures reproduce exactly. */
function normals(n: number, seed: number, scale = 1, shift = 0): Float64Array {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(uniform(), 1e-12), v = uniform();
    out[i] = shift + scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

interface Input { shape: number[]; data: Float64Array; check?: number }
type Fn = (t: Record<string, Tensor>) => Tensor;

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Indices of the elements to perturb: all of them, or `check` spread evenly. */
function subset(n: number, check?: number): number[] {
  if (check === undefined || check >= n) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: check }, (_, k) => Math.floor((k * n) / check + 0.5) % n);
}

function gradcheck(inputs: Record<string, Input>, fn: Fn, seed = 1): { loss: number; analytic: Record<string, number[]> } {
  return tidy(() => {
    const names = Object.keys(inputs);
    for (const k of names) assert.equal(inputs[k].data.length, numel(inputs[k].shape), `${k}: data fills shape`);
    // analytic gradient
    const leaves: Record<string, Tensor> = {};
    for (const k of names) leaves[k] = tensor(inputs[k].data, { shape: inputs[k].shape, dtype: 'float64', requiresGrad: true });
    const out = fn(leaves);
    assert.equal(out.dtype, 'float64', 'the op keeps float64');
    const gData = normals(out.numel, seed * 7919 + 13);
    const G = tensor(gData, { shape: out.shape, dtype: 'float64' });
    const loss = out.mul(G).sum();
    loss.backward();
    const analytic: Record<string, number[]> = {};
    for (const k of names) {
      const g = leaves[k].grad;
      assert.ok(g !== null, `${k}: no gradient`);
      assert.equal(g.dtype, 'float64', `${k}: gradient dtype`);
      assert.deepEqual(g.shape, inputs[k].shape, `${k}: gradient shape`);
      analytic[k] = g.toArray();
    }

    // numerical gradient, one perturbed element at a time
    const evaluate = (name: string, data: Float64Array): number => noGrad(() => tidy(() => {
      const t: Record<string, Tensor> = {};
      for (const k of names) t[k] = tensor(k === name ? data : inputs[k].data, { shape: inputs[k].shape, dtype: 'float64' });
      return fn(t).mul(G).sum().item();
    }));
    for (const k of names) {
      const base = inputs[k].data;
      const work = Float64Array.from(base);
      let largest = 0;
      for (const i of subset(base.length, inputs[k].check)) {
        work[i] = base[i] + H;
        const plus = evaluate(k, work);
        work[i] = base[i] - H;
        const minus = evaluate(k, work);
        work[i] = base[i];
        const numerical = (plus - minus) / (2 * H);
        const a = analytic[k][i];
        largest = Math.max(largest, Math.abs(numerical));
        assert.ok(Math.abs(numerical - a) <= TOL * (1 + Math.abs(a)),
          `d/d${k}[${i}]: autograd ${a}, finite difference ${numerical} (diff ${Math.abs(numerical - a)})`);
      }
      // a gradient that is zero everywhere would match trivially; these inputs all matter
      assert.ok(largest > 1e-3, `d/d${k}: gradient vanishes on every checked element`);
    }
    return { loss: loss.item(), analytic };
  });
}

const inp = (shape: number[], seed: number, o: { scale?: number; shift?: number; check?: number } = {}): Input =>
  ({ shape, data: normals(numel(shape), seed, o.scale ?? 1, o.shift ?? 0), check: o.check });

test('gradcheck: conv2d stride 2, padding 1, groups 2, with bias', () => {
  gradcheck({ x: inp([2, 4, 5, 5], 1), w: inp([6, 2, 3, 3], 2, { scale: 0.5 }), b: inp([6], 3) },
    (t) => F.conv2d(t.x, t.w, t.b, { stride: 2, padding: 1, groups: 2 }));
});

test('gradcheck: conv2d stride 1, padding 2, dilation 2, groups 1, no bias', () => {
  gradcheck({ x: inp([2, 3, 5, 5], 4), w: inp([4, 3, 3, 3], 5, { scale: 0.5 }) },
    (t) => F.conv2d(t.x, t.w, null, { padding: 2, dilation: 2 }));
});

test('gradcheck: depthwise conv2d (groups = channels), rectangular stride/padding', () => {
  gradcheck({ x: inp([1, 3, 6, 5], 6), w: inp([3, 1, 3, 3], 7, { scale: 0.5 }), b: inp([3], 8) },
    (t) => F.conv2d(t.x, t.w, t.b, { stride: [2, 1], padding: [1, 0], groups: 3 }));
});

test('gradcheck: batch norm in training mode (batch statistics), running stats updated', () => {
  const C = 3;
  gradcheck({ x: inp([4, C, 2, 3], 9, { scale: 2, shift: 0.5 }), weight: inp([C], 10, { scale: 0.5, shift: 1 }), bias: inp([C], 11) },
    (t) => {
      const rm = tensor(new Float64Array(C), { dtype: 'float64' });
      const rv = tensor(new Float64Array(C).fill(1), { dtype: 'float64' });
      const y = F.batchNorm(t.x, rm, rv, t.weight, t.bias, { training: true, momentum: 0.1, eps: 1e-5 });
      // training mode must have moved the running statistics away from (0, 1)
      const moved = noGrad(() => rm.abs().sum().item() + rv.sub(1).abs().sum().item());
      assert.ok(moved > 1e-3, 'running statistics were not updated');
      return y;
    });
});

test('gradcheck: linear with bias on a batch', () => {
  gradcheck({ x: inp([3, 5], 12), weight: inp([4, 5], 13, { scale: 0.5 }), bias: inp([4], 14) },
    (t) => F.linear(t.x, t.weight, t.bias));
});

test('gradcheck: lstm_cell (h and c, all weights and states)', () => {
  const N = 2, I = 3, Hd = 4;
  gradcheck({
    x: inp([N, I], 15), h0: inp([N, Hd], 16, { scale: 0.5 }), c0: inp([N, Hd], 17, { scale: 0.5 }),
    w_ih: inp([4 * Hd, I], 18, { scale: 0.4 }), w_hh: inp([4 * Hd, Hd], 19, { scale: 0.4 }),
    b_ih: inp([4 * Hd], 20, { scale: 0.2 }), b_hh: inp([4 * Hd], 21, { scale: 0.2 }),
  }, (t) => {
    const [h, c] = F.lstmCell(t.x, t.h0, t.c0, t.w_ih, t.w_hh, t.b_ih, t.b_hh);
    // both outputs enter the loss, with different weights
    return h.mul(1.5).add(c.mul(-0.75));
  });
});

test('gradcheck: cross entropy with label smoothing (mean and sum reductions)', () => {
  const target = () => tensor([2, 0, 3, 3, 1], { dtype: 'int64' });
  gradcheck({ logits: inp([5, 4], 22, { scale: 2 }) },
    (t) => F.crossEntropy(t.logits, target(), { labelSmoothing: 0.2 }));
  gradcheck({ logits: inp([5, 4], 23, { scale: 2 }) },
    (t) => F.crossEntropy(t.logits, target(), { labelSmoothing: 0.1, reduction: 'sum' }));
});

test('gradcheck: softmax over dim 1 and dim 0', () => {
  gradcheck({ x: inp([3, 5], 24, { scale: 2 }) }, (t) => F.softmax(t.x, 1));
  gradcheck({ x: inp([4, 2, 3], 25, { scale: 2 }) }, (t) => F.softmax(t.x, 0));
});

test('gradcheck: gelu, exact and tanh approximation', () => {
  gradcheck({ x: inp([4, 6], 26, { scale: 2 }) }, (t) => F.gelu(t.x));
  gradcheck({ x: inp([4, 6], 27, { scale: 2 }) }, (t) => F.gelu(t.x, 'tanh'));
});

test('gradcheck: composite conv → batch norm → relu → spatial mean → linear → cross entropy', () => {
  const C = 3, K = 4;
  const target = () => tensor([1, 3, 0], { dtype: 'int64' });
  gradcheck({
    x: inp([3, 2, 6, 6], 28, { check: 60 }),
    w: inp([C, 2, 3, 3], 29, { scale: 0.5 }),
    gamma: inp([C], 30, { scale: 0.3, shift: 1 }),
    beta: inp([C], 31, { scale: 0.3 }),
    fc_w: inp([K, C], 32, { scale: 0.7 }),
    fc_b: inp([K], 33, { scale: 0.2 }),
  }, (t) => {
    const y = F.conv2d(t.x, t.w, null, { padding: 1 });
    const z = F.relu(F.batchNorm(y, null, null, t.gamma, t.beta, { training: true }));
    const pooled = z.mean([2, 3]);
    return F.crossEntropy(F.linear(pooled, t.fc_w, t.fc_b), target(), { labelSmoothing: 0.1 });
  });
});

test('gradcheck: svdvals, sum of squares (= squared Frobenius norm, gradient 2A) and weighted', () => {
  const A = inp([5, 3], 34);
  const { loss, analytic } = gradcheck({ A }, (t) => F.svdvals(t.A).pow(2).sum());
  // closed form: Σ σᵢ² = ‖A‖²_F, whose gradient is 2A (G is a scalar here, so scale by it)
  const frob = A.data.reduce((s, v) => s + v * v, 0);
  const gScalar = normals(1, 1 * 7919 + 13)[0];
  assert.ok(Math.abs(loss - gScalar * frob) <= 1e-10 * Math.abs(gScalar * frob), `Σσ² = ${loss / gScalar}, ‖A‖² = ${frob}`);
  analytic.A.forEach((g, i) => assert.ok(Math.abs(g - 2 * gScalar * A.data[i]) <= 1e-10 * (1 + Math.abs(g)), `d/dA[${i}] = ${g}`));
  // each singular value on its own (distinct values, so differentiable)
  gradcheck({ A: inp([4, 6], 35) }, (t) => F.svdvals(t.A), 2);
});
