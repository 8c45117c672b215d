/**
 * Tensor basics with hand-computed expectations: creation and dtype round trips, shape ops,
 * reductions, matmul, comparisons, random numbers (Gumbel moments, seeding), dropout and autograd.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Tensor, tensor, zeros, ones, full, arange, eye, cat, stack, tidy, noGrad, enableGrad, isGradEnabled, grad,
  manualSeed, rand, randn, gumbel, F, Dropout,
} from '../../src/index';

const close = (a: number[], b: number[], tol = 1e-6, what = 'values') => {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= tol * (1 + Math.abs(b[i])), `${what}[${i}]: ${v} vs ${b[i]}`));
};
const bytes = (t: Tensor) => Buffer.from(t.data().buffer);

// ---- creation and dtypes ----

test('tensor from nested arrays: float32 default, shape inferred, values rounded to float32', () => tidy(() => {
  const t = tensor([[1, 2.5, -3], [0.1, 1e-3, 7]]);
  assert.equal(t.dtype, 'float32');
  assert.deepEqual(t.shape, [2, 3]);
  assert.equal(t.ndim, 2);
  assert.equal(t.numel, 6);
  assert.equal(t.size(-1), 3);
  const d = t.data();
  assert.ok(d instanceof Float32Array);
  assert.deepEqual(Array.from(d), [1, 2.5, -3, Math.fround(0.1), Math.fround(1e-3), 7]);
  assert.deepEqual(t.toArray(), Array.from(d));
  assert.throws(() => tensor([[1, 2], [3]]), /ragged/);
  assert.throws(() => tensor([1, 2, 3], { shape: [2, 2] }), /do not fill/);
}));

test('tensor from typed arrays with a shape: float32, float64 keep every bit', () => tidy(() => {
  const f32 = new Float32Array([1.5, -0, 3.25, 1e-30, -7, 8]);
  const a = tensor(f32, { shape: [3, 2] });
  assert.equal(a.dtype, 'float32');
  assert.deepEqual(a.shape, [3, 2]);
  assert.deepEqual(Buffer.from(a.data().buffer), Buffer.from(f32.buffer));
  const f64 = new Float64Array([0.1, Math.PI, -1e300, 5e-324]);
  const b = tensor(f64, { shape: [2, 2], dtype: 'float64' });
  assert.equal(b.dtype, 'float64');
  assert.ok(b.data() instanceof Float64Array);
  assert.deepEqual(Array.from(b.data() as Float64Array), Array.from(f64));
  // nested arrays into float64 are not rounded through float32
  assert.deepEqual(tensor([[0.1, 0.2]], { dtype: 'float64' }).toArray(), [0.1, 0.2]);
  // the tensor copies: changing the source afterwards changes nothing
  f64[0] = 42;
  assert.equal((b.data() as Float64Array)[0], 0.1);
}));

test('int64 tensors: BigInt64Array keeps 64-bit values, nested arrays truncate toward zero', () => tidy(() => {
  const big = BigInt64Array.from([9007199254740993n, -(2n ** 62n), 0n, 7n]);
  const t = tensor(big, { shape: [2, 2] });
  assert.equal(t.dtype, 'int64');
  assert.deepEqual(Array.from(t.data() as BigInt64Array), Array.from(big));
  const n = tensor([[1, -2], [3.9, -3.9]], { dtype: 'int64' });
  assert.equal(n.dtype, 'int64');
  assert.deepEqual(n.shape, [2, 2]);
  assert.deepEqual(n.toArray(), [1, -2, 3, -3]);
  assert.deepEqual(arange(5).toArray(), [0, 1, 2, 3, 4]);
  assert.equal(arange(5).dtype, 'int64');
  // to float and back
  assert.deepEqual(n.float().toArray(), [1, -2, 3, -3]);
  assert.deepEqual(tensor([2.7, -2.7]).long().toArray(), [2, -2]);
}));

test('bool tensors: truthiness in, 0/1 bytes out', () => tidy(() => {
  const t = tensor([[true, false], [false, true]], { dtype: 'bool' });
  assert.equal(t.dtype, 'bool');
  assert.deepEqual(t.shape, [2, 2]);
  assert.ok(t.data() instanceof Uint8Array);
  assert.deepEqual(t.toArray(), [1, 0, 0, 1]);
  assert.deepEqual(tensor([0, 2, -1, 0.5], { dtype: 'bool' }).toArray(), [0, 1, 1, 1]);
  assert.deepEqual(t.logicalNot().toArray(), [0, 1, 1, 0]);
  assert.deepEqual(t.to('float32').toArray(), [1, 0, 0, 1]);
}));

test('bfloat16: representable values round-trip, others round to nearest even, raw bits as Uint16', () => tidy(() => {
  const t = tensor([1.5, -2, 3.140625, 1 + 2 ** -8, 1 + 3 * 2 ** -9, 65280]);
  const b = t.to('bfloat16');
  assert.equal(b.dtype, 'bfloat16');
  const bits = b.data();
  assert.ok(bits instanceof Uint16Array);
  // bf16 is the high half of the float32: 1.5 = 0x3FC0, -2 = 0xC000, 3.140625 = 0x4049
  assert.deepEqual(Array.from(bits).slice(0, 3), [0x3fc0, 0xc000, 0x4049]);
  // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties to even (1); 1 + 3·2⁻⁹ goes up to 1 + 2⁻⁷
  assert.deepEqual(b.to('float32').toArray(), [1.5, -2, 3.140625, 1, 1 + 2 ** -7, 65280]);
  // created directly as bfloat16 from a typed array and from nested arrays
  const c = tensor(new Float32Array([0.25, -1.25, 100]), { dtype: 'bfloat16', shape: [3, 1] });
  assert.equal(c.dtype, 'bfloat16');
  assert.deepEqual(c.shape, [3, 1]);
  assert.deepEqual(c.to('float32').toArray(), [0.25, -1.25, 100]);
  assert.deepEqual(tensor([[0.5], [6]], { dtype: 'bfloat16' }).to('float32').toArray(), [0.5, 6]);
}));

test('factories: zeros, ones, full, eye', () => tidy(() => {
  assert.deepEqual(zeros([2, 2]).toArray(), [0, 0, 0, 0]);
  assert.deepEqual(ones([3], { dtype: 'float64' }).toArray(), [1, 1, 1]);
  assert.equal(ones([3], { dtype: 'float64' }).dtype, 'float64');
  assert.deepEqual(full([2], 2.5).toArray(), [2.5, 2.5]);
  assert.deepEqual(eye(3).toArray(), [1, 0, 0, 0, 1, 0, 0, 0, 1]);
  assert.equal(zeros([2], { requiresGrad: true }).requiresGrad, true);
}));

// ---- shape ops ----

const m23 = () => tensor([[1, 2, 3], [4, 5, 6]]);
const t234 = () => tensor(Float32Array.from({ length: 24 }, (_, i) => i), { shape: [2, 3, 4] });

test('reshape, view, flatten', () => tidy(() => {
  const r = m23().reshape(3, 2);
  assert.deepEqual(r.shape, [3, 2]);
  assert.deepEqual(r.toArray(), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(m23().reshape(-1).shape, [6]);
  assert.deepEqual(m23().view(1, 6).shape, [1, 6]);
  assert.deepEqual(t234().flatten().shape, [24]);
  assert.deepEqual(t234().flatten(1).shape, [2, 12]);
  assert.deepEqual(t234().flatten(0, 1).shape, [6, 4]);
  assert.throws(() => m23().reshape(4, 2));
}));

test('permute and transpose move elements', () => tidy(() => {
  const t = m23().transpose(0, 1);
  assert.deepEqual(t.shape, [3, 2]);
  assert.deepEqual(t.toArray(), [1, 4, 2, 5, 3, 6]);
  assert.deepEqual(m23().t().toArray(), [1, 4, 2, 5, 3, 6]);
  const p = t234().permute(2, 0, 1);
  assert.deepEqual(p.shape, [4, 2, 3]);
  // p[k][i][j] = x[i][j][k] = 12i + 4j + k
  const v = p.toArray();
  for (let k = 0; k < 4; k++) for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) {
    assert.equal(v[k * 6 + i * 3 + j], 12 * i + 4 * j + k);
  }
}));

test('unsqueeze, squeeze, expand', () => tidy(() => {
  const v = tensor([1, 2, 3]);
  assert.deepEqual(v.unsqueeze(0).shape, [1, 3]);
  assert.deepEqual(v.unsqueeze(1).shape, [3, 1]);
  assert.deepEqual(v.unsqueeze(-1).shape, [3, 1]);
  const s = zeros([1, 3, 1, 2]);
  assert.deepEqual(s.squeeze().shape, [3, 2]);
  assert.deepEqual(s.squeeze(2).shape, [1, 3, 2]);
  assert.deepEqual(s.squeeze(1).shape, [1, 3, 1, 2], 'squeezing a non-1 dim is a no-op');
  const e = v.unsqueeze(1).expand(3, 2);
  assert.deepEqual(e.shape, [3, 2]);
  assert.deepEqual(e.toArray(), [1, 1, 2, 2, 3, 3]);
  assert.deepEqual(v.expand(2, 3).toArray(), [1, 2, 3, 1, 2, 3]);
  assert.deepEqual(v.expand(2, -1).shape, [2, 3]);
}));

test('cat and stack', () => tidy(() => {
  const a = m23(), b = tensor([[7, 8, 9]]);
  const c0 = cat([a, b]);
  assert.deepEqual(c0.shape, [3, 3]);
  assert.deepEqual(c0.toArray(), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const c1 = cat([a, tensor([[10], [11]])], 1);
  assert.deepEqual(c1.shape, [2, 4]);
  assert.deepEqual(c1.toArray(), [1, 2, 3, 10, 4, 5, 6, 11]);
  const x = tensor([1, 2]), y = tensor([3, 4]);
  assert.deepEqual(stack([x, y]).shape, [2, 2]);
  assert.deepEqual(stack([x, y]).toArray(), [1, 2, 3, 4]);
  assert.deepEqual(stack([x, y], 1).toArray(), [1, 3, 2, 4]);
  assert.throws(() => stack([x, tensor([1, 2, 3])]));
}));

test('narrow, slice, select', () => tidy(() => {
  const x = t234();
  const n = x.narrow(2, 1, 2);
  assert.deepEqual(n.shape, [2, 3, 2]);
  assert.deepEqual(n.toArray(), [1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22]);
  const r = tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(r.slice(0, 2, 5).toArray(), [2, 3, 4]);
  assert.deepEqual(r.slice(0, 1, undefined, 3).toArray(), [1, 4, 7]);
  assert.deepEqual(r.slice(0, -3).toArray(), [7, 8, 9]);
  assert.deepEqual(r.slice(0, undefined, 2).toArray(), [0, 1]);
  assert.deepEqual(x.slice(1, 1).shape, [2, 2, 4]);
  const s = x.select(1, 2);
  assert.deepEqual(s.shape, [2, 4]);
  assert.deepEqual(s.toArray(), [8, 9, 10, 11, 20, 21, 22, 23]);
  assert.deepEqual(x.select(0, -1).select(0, 0).toArray(), [12, 13, 14, 15]);
}));

test('indexSelect and gather', () => tidy(() => {
  const x = m23();
  const idx = tensor([2, 0, 2], { dtype: 'int64' });
  const cols = x.indexSelect(1, idx);
  assert.deepEqual(cols.shape, [2, 3]);
  assert.deepEqual(cols.toArray(), [3, 1, 3, 6, 4, 6]);
  assert.deepEqual(x.indexSelect(0, tensor([1], { dtype: 'int64' })).toArray(), [4, 5, 6]);
  // out[i][j] = x[i][index[i][j]]
  const g = x.gather(1, tensor([[2, 0], [1, 1]], { dtype: 'int64' }));
  assert.deepEqual(g.shape, [2, 2]);
  assert.deepEqual(g.toArray(), [3, 1, 5, 5]);
  // out[i][j] = x[index[i][j]][j]
  assert.deepEqual(x.gather(0, tensor([[1, 0, 1]], { dtype: 'int64' })).toArray(), [4, 2, 6]);
}));

// ---- elementwise, reductions, products ----

test('elementwise arithmetic with broadcasting and scalars', () => tidy(() => {
  const x = m23(), r = tensor([10, 20, 30]);
  assert.deepEqual(x.add(r).toArray(), [11, 22, 33, 14, 25, 36]);
  assert.deepEqual(x.add(r, 2).toArray(), [21, 42, 63, 24, 45, 66]);
  assert.deepEqual(x.sub(1).toArray(), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(x.mul(tensor([[2], [-1]])).toArray(), [2, 4, 6, -4, -5, -6]);
  close(x.div(4).toArray(), [0.25, 0.5, 0.75, 1, 1.25, 1.5]);
  close(x.pow(2).toArray(), [1, 4, 9, 16, 25, 36]);
  close(x.sqrt().toArray(), [1, Math.SQRT2, Math.sqrt(3), 2, Math.sqrt(5), Math.sqrt(6)]);
  close(x.exp().log().toArray(), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(tensor([-2, -0.5, 0.5, 2]).clamp(-1, 1).toArray(), [-1, -0.5, 0.5, 1]);
  assert.deepEqual(tensor([-2, 3]).clamp(0).toArray(), [0, 3]);
  assert.deepEqual(tensor([-2, 3]).neg().abs().toArray(), [2, 3]);
}));

test('reductions: sum, mean, var, std, max, min, argmax, argmin, norm, logsumexp', () => tidy(() => {
  const x = m23();
  assert.equal(x.sum().item(), 21);
  assert.deepEqual(x.sum().shape, []);
  assert.deepEqual(x.sum(0).toArray(), [5, 7, 9]);
  assert.deepEqual(x.sum(1, true).shape, [2, 1]);
  assert.deepEqual(x.sum([0, 1]).toArray(), [21]);
  assert.equal(x.mean().item(), 3.5);
  assert.deepEqual(x.mean(1).toArray(), [2, 5]);
  // unbiased variance of 1..6: 17.5/5 = 3.5; population: 17.5/6
  close([x.var().item()], [3.5]);
  close([x.var(undefined, { unbiased: false }).item()], [17.5 / 6]);
  assert.deepEqual(x.var(1).toArray(), [1, 1]);
  assert.deepEqual(x.var(0, { keepdim: true }).shape, [1, 3]);
  close(x.var(0).toArray(), [4.5, 4.5, 4.5]);
  close([x.std().item()], [Math.sqrt(3.5)]);
  const y = tensor([[3, 9, -1], [7, 2, 8]]);
  assert.equal(y.max().item(), 9);
  assert.equal(y.min().item(), -1);
  const [vals, idx] = y.max(1);
  assert.deepEqual(vals.toArray(), [9, 8]);
  assert.deepEqual(idx.toArray(), [1, 2]);
  assert.equal(idx.dtype, 'int64');
  const [mv, mi] = y.min(0, true);
  assert.deepEqual(mv.shape, [1, 3]);
  assert.deepEqual(mv.toArray(), [3, 2, -1]);
  assert.deepEqual(mi.toArray(), [0, 1, 0]);
  assert.equal(y.argmax().item(), 1);
  assert.deepEqual(y.argmax(0).toArray(), [1, 0, 1]);
  assert.deepEqual(y.argmin(1).toArray(), [2, 1]);
  close([tensor([3, -4]).norm().item()], [5]);
  close([tensor([3, -4]).norm(1).item()], [7]);
  close(tensor([[0, Math.log(3)], [1, 1]]).logsumexp(1).toArray(), [Math.log(4), 1 + Math.log(2)]);
}));

test('matmul and mm: hand-computed products, batched broadcast, vector cases', () => tidy(() => {
  const a = m23(), b = tensor([[1, 0], [0, 1], [2, -1]]);
  // [1 2 3; 4 5 6]·[1 0; 0 1; 2 -1] = [7 -1; 16 -1]
  const c = a.matmul(b);
  assert.deepEqual(c.shape, [2, 2]);
  assert.deepEqual(c.toArray(), [7, -1, 16, -1]);
  assert.deepEqual(a.mm(b).toArray(), [7, -1, 16, -1]);
  assert.deepEqual(a.matmul(tensor([1, 1, 1])).toArray(), [6, 15]);
  assert.equal(tensor([1, 2, 3]).matmul(tensor([4, 5, 6])).item(), 32);
  const batched = stack([a, a.mul(2)]).matmul(b);
  assert.deepEqual(batched.shape, [2, 2, 2]);
  assert.deepEqual(batched.toArray(), [7, -1, 16, -1, 14, -2, 32, -2]);
  assert.throws(() => a.matmul(a));
}));

test('item() on 0-d and one-element tensors of several dtypes', () => tidy(() => {
  assert.equal(tensor([2.5]).item(), 2.5);
  assert.equal(tensor([[7]], { dtype: 'int64' }).item(), 7);
  assert.equal(tensor([0.1], { dtype: 'float64' }).sum().item(), 0.1);
  assert.equal(tensor([true], { dtype: 'bool' }).item(), 1);
  assert.equal(tensor([false], { dtype: 'bool' }).item(), 0);
  assert.throws(() => tensor([1, 2]).item());
}));

test('comparison ops give bool tensors, with scalars and broadcast tensors', () => tidy(() => {
  const x = tensor([1, 2, 3, 4]);
  const checks: [Tensor, number[]][] = [
    [x.eq(2), [0, 1, 0, 0]], [x.ne(2), [1, 0, 1, 1]], [x.gt(2), [0, 0, 1, 1]],
    [x.ge(2), [0, 1, 1, 1]], [x.lt(2), [1, 0, 0, 0]], [x.le(2), [1, 1, 0, 0]],
    [x.eq(tensor([1, 0, 3, 0])), [1, 0, 1, 0]], [x.gt(tensor([4, 1, 3, 0])), [0, 1, 0, 1]],
  ];
  for (const [t, expected] of checks) {
    assert.equal(t.dtype, 'bool');
    assert.deepEqual(t.toArray(), expected);
  }
  const grid = tensor([[1], [3]]).lt(tensor([0, 2, 4]));
  assert.deepEqual(grid.shape, [2, 3]);
  assert.deepEqual(grid.toArray(), [0, 1, 1, 0, 0, 1]);
  // where(cond, this, other)
  assert.deepEqual(x.where(x.gt(2), zeros([4])).toArray(), [0, 0, 3, 4]);
}));

// ---- random ----

test('gumbel: mean ≈ Euler–Mascheroni 0.5772 and variance ≈ π²/6 over 100k samples, all finite', () => tidy(() => {
  manualSeed(1234);
  const g = gumbel([100000]);
  assert.deepEqual(g.shape, [100000]);
  assert.equal(g.dtype, 'float32');
  const d = g.data() as Float32Array;
  let sum = 0, sq = 0;
  for (const v of d) {
    assert.ok(Number.isFinite(v), `non-finite Gumbel sample ${v}`);
    sum += v;
    sq += v * v;
  }
  const mean = sum / d.length, variance = sq / d.length - mean * mean;
  assert.ok(Math.abs(mean - 0.5772156649) < 0.05, `mean ${mean}`);
  assert.ok(Math.abs(variance - Math.PI ** 2 / 6) < 0.1, `variance ${variance}`);
  // float64 Gumbel too
  assert.equal(gumbel([4], { dtype: 'float64' }).dtype, 'float64');
}));

test('manualSeed: same seed → identical rand/randn/gumbel bits; different seed → different', () => tidy(() => {
  const draw = (seed: number) => {
    manualSeed(seed);
    return [rand([1000]), randn([1000]), gumbel([1000]), rand([10], { dtype: 'float64' })].map(bytes);
  };
  const a = draw(42), b = draw(42), c = draw(43);
  for (let i = 0; i < a.length; i++) {
    assert.ok(a[i].equals(b[i]), `draw ${i}: same seed gave different bits`);
    assert.ok(!a[i].equals(c[i]), `draw ${i}: different seeds gave the same bits`);
  }
  // within one seed, successive draws differ (the generator advances)
  manualSeed(42);
  assert.ok(!bytes(rand([1000])).equals(bytes(rand([1000]))));
  // rand is in [0, 1)
  const u = rand([10000]).toArray();
  assert.ok(u.every((v) => v >= 0 && v < 1));
}));

test('dropout: training zeros about p of the elements and scales the rest by 1/(1−p); eval is identity', () => tidy(() => {
  manualSeed(7);
  const p = 0.3, n = 100000;
  const x = ones([n]);
  const y = F.dropout(x, p, true).toArray();
  const zerosCount = y.filter((v) => v === 0).length;
  assert.ok(Math.abs(zerosCount / n - p) < 0.01, `dropped fraction ${zerosCount / n}`);
  const scale = Math.fround(1 / (1 - p));
  assert.ok(y.every((v) => v === 0 || Math.abs(v - scale) < 1e-6), 'kept elements are scaled by 1/(1−p)');
  // expectation preserved
  assert.ok(Math.abs(y.reduce((s, v) => s + v, 0) / n - 1) < 0.02);
  const r = randn([50]);
  assert.deepEqual(F.dropout(r, p, false).toArray(), r.toArray());
  // the Dropout module follows train()/eval()
  const m = new Dropout(0.5);
  const z = m.forward(ones([1000])).toArray();
  assert.ok(z.some((v) => v === 0) && z.some((v) => v === 2));
  m.eval();
  assert.deepEqual(m.forward(r).toArray(), r.toArray());
}));

// ---- autograd ----

test('autograd: requiresGrad_, backward accumulates .grad, leaves and non-leaves', () => tidy(() => {
  const x = tensor([1, 2, 3]);
  assert.equal(x.requiresGrad, false);
  x.requiresGrad_();
  assert.equal(x.requiresGrad, true);
  assert.equal(x.isLeaf, true);
  assert.equal(x.grad, null);
  const y = x.mul(x).mul(3).sum(); // d/dx 3x² = 6x
  assert.equal(y.requiresGrad, true);
  assert.equal(y.isLeaf, false);
  y.backward();
  assert.deepEqual(x.grad!.toArray(), [6, 12, 18]);
  // a second backward adds to .grad
  x.sum().backward();
  assert.deepEqual(x.grad!.toArray(), [7, 13, 19]);
  x.grad = null;
  assert.equal(x.grad, null);
  // backward with an explicit upstream gradient on a non-scalar output
  const z = x.mul(2);
  z.backward(tensor([1, 0, -1]));
  assert.deepEqual(x.grad!.toArray(), [2, 0, -2]);
  // requiresGrad_(false) turns recording off for that leaf
  const w = tensor([1]).requiresGrad_(true).requiresGrad_(false);
  assert.equal(w.mul(2).requiresGrad, false);
}));

test('autograd: detach stops the gradient', () => tidy(() => {
  const x = tensor([1, 2, 3], { requiresGrad: true });
  const d = x.detach();
  assert.equal(d.requiresGrad, false);
  // y = Σ detach(x)·x: only the second factor is differentiated, so dy/dx = x (not 2x)
  d.mul(x).sum().backward();
  assert.deepEqual(x.grad!.toArray(), [1, 2, 3]);
}));

test('autograd: noGrad records nothing; enableGrad turns it back on inside', () => tidy(() => {
  const x = tensor([1, 2], { requiresGrad: true });
  assert.equal(isGradEnabled(), true);
  const y = noGrad(() => {
    assert.equal(isGradEnabled(), false);
    const inner = enableGrad(() => x.mul(2));
    assert.equal(inner.requiresGrad, true);
    return x.mul(2);
  });
  assert.equal(isGradEnabled(), true);
  assert.equal(y.requiresGrad, false);
  assert.throws(() => y.sum().backward());
  // the flag is restored when fn throws
  assert.throws(() => noGrad(() => { throw new Error('boom'); }), /boom/);
  assert.equal(isGradEnabled(), true);
}));

test('autograd: grad() returns gradients without touching .grad', () => tidy(() => {
  const x = tensor([1, 2, 3], { requiresGrad: true });
  const w = tensor([0.5, -1, 2], { requiresGrad: true });
  const y = x.mul(x).mul(w).sum(); // dy/dx = 2xw, dy/dw = x²
  const [gx, gw] = grad([y], [x, w]);
  assert.ok(gx !== null && gw !== null);
  assert.deepEqual(gx.toArray(), [1, -4, 12]);
  assert.deepEqual(gw.toArray(), [1, 4, 9]);
  assert.equal(x.grad, null);
  assert.equal(w.grad, null);
  // unused inputs: an error by default, null with allowUnused
  const u = tensor([1], { requiresGrad: true });
  const z = x.sum();
  assert.throws(() => grad([z], [u], { retainGraph: true }));
  assert.deepEqual(grad([z], [u], { allowUnused: true }).map((g) => g === null), [true]);
  // createGraph gives a differentiable gradient: d/dx (d/dx Σx³) summed = Σ 6x
  const c = x.pow(3).sum();
  const [g1] = grad([c], [x], { createGraph: true });
  assert.ok(g1 !== null && g1.requiresGrad);
  const [g2] = grad([g1.sum()], [x]);
  assert.deepEqual(g2!.toArray(), [6, 12, 18]);
}));
