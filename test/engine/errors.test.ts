import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { tensor, zeros } from '../../src/engine/creation';
import { randn } from '../../src/engine/random';
import { aten } from '../../src/engine/tensor';
import { native } from '../../src/engine/native';
import { conv2d, linear, crossEntropy } from '../../src/nn/functional';

test('libtorch errors become JS Errors with libtorch\'s message', () => {
  const a = randn([2, 3]);
  const b = randn([4, 5]);
  assert.throws(() => a.matmul(b), /cannot be multiplied/);
  assert.throws(() => a.reshape(7), /invalid for input of size 6/);
  assert.throws(() => conv2d(randn([1, 3, 8, 8]), randn([4, 2, 3, 3])), /channels/);
  assert.throws(() => linear(randn([2, 3]), randn([4, 5])), /cannot be multiplied/);
  assert.throws(() => crossEntropy(randn([2, 3]), tensor([0, 5], { dtype: 'int64' })), /out of bounds|Target 5/);
  // The message carries libtorch's text without its C++ backtrace.
  assert.throws(() => a.reshape(7), (e: Error) => !/frame #/.test(e.message));
});

test('using a disposed tensor is a clear Error, and dispose is idempotent', () => {
  const t = zeros([3]);
  t.dispose();
  t.dispose();
  assert.equal(t.isDisposed, true);
  assert.throws(() => t.shape, /tensor used after dispose\(\)/);
  assert.throws(() => t.add(1), /tensor used after dispose\(\)/);
  const u = zeros([3]);
  const h = u.handle;
  u.dispose();
  assert.throws(() => native.shape(h), /used after dispose/);
});

test('bad arguments to operators are Errors naming the operator and argument', () => {
  const a = randn([2, 2]);
  assert.throws(() => aten('aten::sum', 'dim_IntList', [a, 1.5]), /aten::sum.dim_IntList argument 'dim': expected an integer/);
  assert.throws(() => aten('aten::add', 'Tensor', [a, 'x']), /argument 'other': expected a tensor/);
  assert.throws(() => aten('aten::add', 'Tensor', [a]), /argument 'other': required/);
  assert.throws(() => aten('aten::no_such_op', '', [a]), /unknown operator aten::no_such_op/);
  assert.throws(() => aten('aten::add', 'Tensor', [a, a, 1, 2, 3]), /takes 3 arguments, got 5/);
  assert.throws(() => native.fromBuffer(new Float32Array(3), 6, [2, 2]), /12 bytes given/);
  assert.throws(() => tensor([[1, 2], [3]]), /ragged/);
  assert.throws(() => native.call(-1, []), /unknown operator id/);
  assert.throws(() => (native as any).meta({}), /expected a tensor/);
  assert.throws(() => native.shape(123456789), /used after dispose/);
});

test('backward through a graph twice without retainGraph is an Error, not a crash', () => {
  const x = randn([3]).requiresGrad_();
  const y = x.mul(x).sum();
  y.backward();
  assert.throws(() => y.backward(), /backward through the graph a second time/);
});

test('a process full of errors keeps running (no abort)', () => {
  const script = `
    const A = require(${JSON.stringify(path.resolve(__dirname, '../../src/index.js'))});
    let n = 0;
    for (let i = 0; i < 200; i++) { try { A.randn([2, 3]).matmul(A.randn([4, 4])); } catch { n++; } }
    console.log(n);`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '200');
});
