import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Tensor } from '../../src/engine/tensor';
import { fromTyped } from '../../src/engine/creation';
import { manualSeed, randn } from '../../src/engine/random';
import { noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { setNumThreads } from '../../src/engine/runtime';
import { isInputError } from '../../src/errors';
import { buildModel } from '../../src/models/registry';
import { BatchNorm2d } from '../../src/nn/batchnorm';
import { exportOnnx } from '../../src/io/onnx/export';
import { importOnnx, importOnnxWithReport, tensorValues } from '../../src/io/onnx/import';
import { DataType, OnnxTensor } from '../../src/io/onnx/onnx-model';

setNumThreads(1);
const PY = '/usr/bin/python3';
const script = path.join(__dirname, '..', '..', '..', 'test', 'reference', 'make_onnx.py');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adafilter-onnx-import-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

/** Why the PyTorch reference cannot run here, or null when it can. */
function torchMissing(): string | null {
  if (!fs.existsSync(PY)) return `${PY} not found`;
  const r = spawnSync(PY, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
  return r.status === 0 ? null : `${PY} has no torch/torchvision (install python3-torch and python3-torchvision)`;
}
const missing = torchMissing();

interface Case { arch: string; classes: number; input: number[]; mode: string }
let cases: Record<string, Case> | null = null;
function reference(): Record<string, Case> {
  if (!cases) {
    const r = spawnSync(PY, [script, dir], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `make_onnx.py failed: ${r.stderr}`);
    cases = (JSON.parse(fs.readFileSync(path.join(dir, 'cases.json'), 'utf8')) as { cases: Record<string, Case> }).cases;
  }
  return cases;
}

function floats(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function maxAbs(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const [name, expectFused] of [['resnet20', true], ['resnet20-preserve', false], ['mobilenetv2-0.5', true], ['resnet18', true]] as const) {
  test(`torch.onnx.export ${name} imports and reproduces PyTorch's logits`, { skip: missing ?? false }, () => {
    const c = reference()[name];
    const { model, report } = importOnnxWithReport(path.join(dir, `${name}.onnx`), c.arch);
    const x = fromTyped(floats(path.join(dir, `${name}.input.bin`)), 'float32', c.input);
    const ours = tidy(() => noGrad(() => model.forward(x).toFloat32Array()));
    const err = maxAbs(ours, floats(path.join(dir, `${name}.logits.bin`)));
    console.log(`# ${name}: max abs error vs PyTorch ${err.toExponential(2)} (${report.fused} fused conv+BN, ${report.separate} separate, ${report.byName} by name)`);
    assert.ok(err <= 1e-4, `${name}: max abs error ${err}`);
    assert.equal(report.numClasses, c.classes);
    const pairs = model.convBns().length;
    assert.equal(expectFused ? report.fused : report.separate, pairs);
    if (!expectFused) assert.ok(report.byName >= 5 * pairs, `names used: ${report.byName}`);
    model.dispose();
  });
}

test('a file of another architecture or class count is refused with an InputError', { skip: missing ?? false }, () => {
  reference();
  const r18 = path.join(dir, 'resnet18.onnx');
  assert.throws(() => importOnnx(r18, 'resnet34'), (e: Error) => isInputError(e) && /20 convolutions in the graph, resnet34 has 36/.test(e.message));
  assert.throws(() => importOnnx(r18, 'resnet18', { numClasses: 1000 }), (e: Error) => isInputError(e) && /10 classes, 1000 were expected/.test(e.message));
  assert.throws(() => importOnnx(path.join(dir, 'resnet20.onnx'), 'resnet18'), (e: Error) => isInputError(e));
  assert.throws(() => importOnnx(path.join(dir, 'mobilenetv2-0.5.onnx'), 'mobilenetv2-0.35'), (e: Error) => isInputError(e) && /shape/.test(e.message));
  assert.throws(() => importOnnx(r18, 'vgg16'), (e: Error) => isInputError(e) && /unknown architecture/.test(e.message));
});

test('our own export imports back by name (BatchNormalization nodes kept)', () => {
  manualSeed(5);
  const m = buildModel('resnet20', 6);
  noGrad(() => {
    for (const mod of m.modules()) {
      if (mod instanceof BatchNorm2d) { mod.running_var.uniform_(0.5, 2); mod.running_mean.uniform_(-0.3, 0.3); mod.weight!.uniform_(0.5, 1.5); }
    }
  });
  const file = path.join(dir, 'ours.onnx');
  exportOnnx(m, file, { inputShape: [3, 32, 32] });
  const { model, report } = importOnnxWithReport(file, 'resnet20');
  assert.equal(report.separate, 21);
  m.eval();
  const x = randn([3, 3, 32, 32]);
  const err = tidy(() => noGrad(() => (m.forward(x).sub(model.forward(x)).abs().max() as Tensor).item()));
  assert.equal(err, 0);
});

const tensorOf = (o: Partial<OnnxTensor>): OnnxTensor => ({
  name: 't', dims: [2], dataType: DataType.FLOAT, raw: null, floatData: [], int32Data: [], int64Data: [], doubleData: [], external: false, ...o,
});

test('initializer data: raw_data and float_data, half precisions, and every inconsistency refused', () => {
  const raw = new Uint8Array(new Float32Array([1.5, -2]).buffer);
  assert.deepEqual(Array.from(tensorValues(tensorOf({ raw }), 'f').values), [1.5, -2]);
  assert.deepEqual(Array.from(tensorValues(tensorOf({ floatData: [1.5, -2] }), 'f').values), [1.5, -2]);
  assert.deepEqual(Array.from(tensorValues(tensorOf({ dataType: DataType.DOUBLE, doubleData: [0.25, 3] }), 'f').values), [0.25, 3]);
  // float16 1.0 = 0x3c00, -2 = 0xc000; bfloat16 1.0 = 0x3f80.
  assert.deepEqual(Array.from(tensorValues(tensorOf({ dataType: DataType.FLOAT16, int32Data: [0x3c00, 0xc000] }), 'f').values), [1, -2]);
  assert.deepEqual(Array.from(tensorValues(tensorOf({ dataType: DataType.BFLOAT16, raw: new Uint8Array([0x80, 0x3f, 0x80, 0xbf]) }), 'f').values), [1, -1]);
  const bad: [Partial<OnnxTensor>, RegExp][] = [
    [{ raw: raw.subarray(0, 4) }, /need 8 bytes, raw_data has 4/],
    [{ floatData: [1] }, /hold 2 values, the file stores 1/],
    [{ floatData: [1, 2], raw }, /both raw_data and typed data/],
    [{ external: true }, /external data/],
    [{ dataType: DataType.INT64, int64Data: [1n, 2n] }, /data type 7 \(INT64\)/],
    [{ dims: [-1] }, /bad dimension/],
    [{ dims: [1e9, 1e9] }, /more elements than any ONNX file/],
    [{ dims: [] }, /hold 1 values, the file stores 0/],
  ];
  for (const [o, re] of bad) {
    assert.throws(() => tensorValues(tensorOf(o), 'f.onnx'), (e: Error) => isInputError(e) && re.test(e.message), JSON.stringify(o, (_, v) => typeof v === 'bigint' ? String(v) : v));
  }
});

test('missing, empty and non-ONNX files are InputErrors', () => {
  assert.throws(() => importOnnx(path.join(dir, 'nope.onnx'), 'resnet20'), (e: Error) => isInputError(e) && /cannot read/.test(e.message));
  const empty = path.join(dir, 'empty.onnx');
  fs.writeFileSync(empty, '');
  assert.throws(() => importOnnx(empty, 'resnet20'), (e: Error) => isInputError(e) && /empty/.test(e.message));
  assert.throws(() => importOnnx(dir, 'resnet20'), (e: Error) => isInputError(e) && /not a regular file/.test(e.message));
  const text = path.join(dir, 'text.onnx');
  fs.writeFileSync(text, 'hello, this is not protobuf');
  assert.throws(() => importOnnx(text, 'resnet20'), (e: Error) => isInputError(e));
});
