import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tensor } from '../../src/engine/creation';
import { Tensor } from '../../src/engine/tensor';
import { manualSeed, randn } from '../../src/engine/random';
import { noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { setNumThreads } from '../../src/engine/runtime';
import { InputError } from '../../src/errors';
import { buildModel } from '../../src/models/registry';
import {
  decodeSafetensors, encodeSafetensors, loadInto, loadSafetensors, readSafetensorsHeader, saveSafetensors,
} from '../../src/io/safetensors';

setNumThreads(1);
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'adafilter-st-'));

/** A file from parts: header object (or raw header text) and raw data bytes. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0), lengthOverride?: bigint): Buffer {
  const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

function rejects(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(() => decodeSafetensors(bytes, 'bad.safetensors'), (e: Error) => {
    assert.ok(e instanceof InputError, `not an InputError: ${e.stack}`);
    assert.match(e.message, /^bad\.safetensors: /);
    assert.match(e.message, pattern);
    return true;
  });
}

test('every dtype round-trips bit-exactly, with metadata, scalars and empty tensors', () => {
  const src = new Map<string, Tensor>([
    ['f32', tensor([[1.5, -2], [3e-30, Infinity]])],
    ['f64', tensor([Math.PI, -0], { dtype: 'float64' })],
    ['f16', tensor([1, 0.5, 65504], { dtype: 'float16' })],
    ['bf16', tensor([1, -3.25, 1e30], { dtype: 'bfloat16' })],
    ['i64', tensor([-(2 ** 53), 7], { dtype: 'int64' })],
    ['i32', tensor([-5, 2 ** 31 - 1], { dtype: 'int32' })],
    ['i16', tensor([-300], { dtype: 'int16' })],
    ['i8', tensor([-128, 127], { dtype: 'int8' })],
    ['u8', tensor([0, 255], { dtype: 'uint8' })],
    ['bool', tensor([true, false, true], { dtype: 'bool' })],
    ['scalar', tensor(4.25).reshape()],
    ['empty', tensor([], { shape: [0, 3] })],
  ]);
  const dir = tmp();
  const file = path.join(dir, 'all.safetensors');
  saveSafetensors(src, file, { note: 'hello', arch: 'x' });
  const back = loadSafetensors(file);
  assert.deepEqual([...back.keys()], [...src.keys()]);
  for (const [k, t] of src) {
    const b = back.get(k)!;
    assert.equal(b.dtype, t.dtype, k);
    assert.deepEqual(b.shape, t.shape, k);
    assert.deepEqual(Buffer.from(b.data().buffer), Buffer.from(t.data().buffer), k);
  }
  const h = readSafetensorsHeader(file);
  assert.deepEqual(h.metadata, { note: 'hello', arch: 'x' });
  assert.equal(h.dataStart % 8, 0, 'data section 8-byte aligned');
  assert.deepEqual(h.entries.map((e) => e.code), ['F32', 'F64', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'F32', 'F32']);
  // The in-memory encoder writes the same bytes.
  assert.deepEqual(encodeSafetensors(src, { note: 'hello', arch: 'x' }), fs.readFileSync(file));
  for (const t of [...src.values(), ...back.values()]) t.dispose();
  fs.rmSync(dir, { recursive: true });
});

test('export round trip: save → load → identical outputs (resnet20, mobilenetv2-0.5)', () => {
  manualSeed(2);
  const dir = tmp();
  for (const arch of ['resnet20', 'mobilenetv2-0.5']) {
    const a = buildModel(arch, 10);
    tidy(() => noGrad(() => { a.forward(randn([4, 3, 32, 32])); })); // move the BN statistics
    a.eval();
    const file = path.join(dir, `${arch}.safetensors`);
    saveSafetensors(a, file);
    const b = buildModel(arch, 10).eval();
    loadInto(b, file);
    tidy(() => noGrad(() => {
      const x = randn([2, 3, 32, 32]);
      assert.deepEqual(b.forward(x).toArray(), a.forward(x).toArray(), arch);
    }));
    for (const [k, t] of a.stateDict()) assert.deepEqual(b.stateDict().get(k)!.toArray(), t.toArray(), k);
    a.dispose();
    b.dispose();
  }
  fs.rmSync(dir, { recursive: true });
});

test('writes are atomic: an existing file is replaced whole, no temporary file stays, failures are InputErrors', () => {
  const dir = tmp();
  const file = path.join(dir, 'w.safetensors');
  fs.writeFileSync(file, 'old');
  const t = tensor([1, 2, 3]);
  saveSafetensors({ t }, file);
  assert.deepEqual(fs.readdirSync(dir), ['w.safetensors']);
  assert.deepEqual(loadSafetensors(file).get('t')!.toArray(), [1, 2, 3]);
  assert.throws(() => saveSafetensors({ t }, path.join(dir, 'missing-folder', 'x.safetensors')),
    (e: Error) => e instanceof InputError && /cannot write \(its folder does not exist\)/.test(e.message));
  assert.throws(() => saveSafetensors({ __metadata__: t }, file), InputError);
  assert.deepEqual(fs.readdirSync(dir), ['w.safetensors']);
  t.dispose();
  fs.rmSync(dir, { recursive: true });
});

test('malformed files: one clear InputError naming the file and the problem', () => {
  const f32 = (shape: number[], offsets: number[]) => ({ dtype: 'F32', shape, data_offsets: offsets });
  const d8 = new Uint8Array(8);
  rejects(new Uint8Array(5), /too short/);
  rejects(craft({}, d8, 0n), /header is empty/);
  rejects(craft({}, d8, 10_000n), /header length 10000 runs past the end of the file/);
  rejects(craft({}, d8, 2n ** 64n - 1n), /header length 18446744073709551615 runs past/);
  rejects(craft('[1,2]'), /not a JSON object/);
  rejects(craft('{"a": '), /not valid JSON: unexpected end/);
  rejects(craft('{"a": 1} x'), /not valid JSON: trailing characters/);
  rejects(craft('{"a":{"dtype":"F32","dtype":"F32"}}'), /duplicate key "dtype"/);
  rejects(craft('{"a":' + '['.repeat(50) + ']'.repeat(50) + '}'), /nesting deeper/);
  rejects(craft('', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 7n), /not valid UTF-8/);
  rejects(craft({ a: 5 }), /tensor "a": entry is not an object/);
  rejects(craft({ a: { dtype: 'Q7', shape: [], data_offsets: [0, 0] } }), /unknown dtype "Q7"/);
  rejects(craft({ a: { dtype: 'U16', shape: [], data_offsets: [0, 2] } }, new Uint8Array(2)), /dtype U16 is not supported here/);
  rejects(craft({ a: f32([-1], [0, 0]) }), /not a list of non-negative integers/);
  rejects(craft({ a: f32([1.5], [0, 0]) }), /not a list of non-negative integers/);
  rejects(craft({ a: f32(new Array(40).fill(1), [0, 4]) }, new Uint8Array(4)), /40 dimensions/);
  rejects(craft({ a: { dtype: 'F32', shape: [1] } }, new Uint8Array(4)), /data_offsets must be/);
  rejects(craft({ a: f32([1], [4, 0]) }, new Uint8Array(4)), /end before they begin/);
  rejects(craft({ a: f32([1], [0, 4]) }, new Uint8Array(2)), /run past the end of the data section \(2 bytes\)/);
  rejects(craft({ a: f32([3], [0, 8]) }, d8), /shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] span 8/);
  rejects(craft({ a: f32([2 ** 40, 2 ** 40, 2 ** 40], [0, 8]) }, d8), /needs 5316911983139663491615228241121378304 bytes/);
  rejects(craft({ a: f32([2], [0, 8]), b: f32([1], [4, 8]) }, d8), /tensor "b" \(bytes 4–8\) overlaps tensor "a"/);
  rejects(craft({ a: f32([1], [0, 4]), b: f32([1], [8, 12]) }, new Uint8Array(12)), /4 bytes before tensor "b" \(from 4\) belong to no tensor/);
  rejects(craft({ a: f32([1], [0, 4]) }, d8), /4 bytes at the end of the data section belong to no tensor/);
  rejects(craft({ a: { dtype: 'BOOL', shape: [2], data_offsets: [0, 2] } }, new Uint8Array([1, 2])), /BOOL but holds byte 2 at element 1/);
  rejects(craft({ __metadata__: { a: 1 } }), /__metadata__ value "a" is not a string/);
  // A hostile name is quoted and cut short in the message.
  rejects(craft({ ['x'.repeat(500)]: 1 }), /tensor "x{80}…": entry/);
  // Harmless: prototype-looking keys are ordinary names; an empty file of tensors is fine.
  const ok = decodeSafetensors(craft('{"__proto__x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"__proto__":"v"}}', new Uint8Array(4)));
  assert.deepEqual([...ok.tensors.keys()], ['__proto__x']);
  assert.equal(Object.getOwnPropertyDescriptor(ok.metadata!, '__proto__')?.value, 'v');
  assert.equal(Object.getPrototypeOf(ok.metadata!), Object.prototype);
  assert.equal(decodeSafetensors(craft({})).tensors.size, 0);
});

test('file-level failures: missing file, a folder, a header over the 100 MB limit in a sparse file', () => {
  const dir = tmp();
  assert.throws(() => loadSafetensors(path.join(dir, 'nope.safetensors')), /nope\.safetensors: cannot open \(ENOENT\)/);
  assert.throws(() => loadSafetensors(dir), (e: Error) => e instanceof InputError && /not a regular file/.test(e.message));
  const big = path.join(dir, 'big.safetensors');
  const fd = fs.openSync(big, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(150_000_000n);
  fs.writeSync(fd, len);
  fs.ftruncateSync(fd, 200_000_000); // sparse: nothing is written
  fs.closeSync(fd);
  const rss = process.memoryUsage().rss;
  assert.throws(() => loadSafetensors(big), /header length 150000000 exceeds the 100000000-byte limit/);
  assert.ok(process.memoryUsage().rss - rss < 50e6, 'nothing was allocated for the claimed header');
  fs.rmSync(dir, { recursive: true });
});

test('loadInto: one error that names the file and every mismatch, before any data is read', () => {
  const dir = tmp();
  const file = path.join(dir, 'r20.safetensors');
  const r20 = buildModel('resnet20', 10);
  saveSafetensors(r20, file);
  const r32 = buildModel('resnet32', 10);
  assert.throws(() => loadInto(r32, file), (e: Error) => e instanceof InputError && e.message.startsWith(`${file}: does not match the model: missing layer1.3.conv1.weight`));
  const wide = buildModel('resnet20', 100);
  const before = wide.stateDict().get('conv1.weight')!.toArray();
  assert.throws(() => loadInto(wide, file), /'fc\.weight' has shape \[10,64\], the model's 'fc\.weight' is \[100,64\]/);
  assert.deepEqual(wide.stateDict().get('conv1.weight')!.toArray(), before, 'nothing changed');
  assert.equal(loadInto(wide, file, { skipClassifier: true }).loaded.length, r20.stateDict().size - 2);
  const r = loadInto(r32, file, { strict: false });
  assert.ok(r.missing.includes('layer3.4.bn2.weight') && r.unexpected.length === 0);
  // A DataParallel 'module.' prefix is removed; num_batches_tracked may be absent; F16 converts.
  const sd = new Map<string, Tensor>();
  for (const [k, t] of r20.stateDict()) {
    if (!k.endsWith('num_batches_tracked')) sd.set(`module.${k}`, t.dtype === 'float32' ? t.to('float16') : t);
  }
  saveSafetensors(sd, file);
  const res = loadInto(buildModel('resnet20', 10), file);
  assert.ok(res.missing.every((k) => k.endsWith('num_batches_tracked')) && res.missing.length === 21);
  // An integer tensor where the model has a float one.
  saveSafetensors(new Map([...r20.stateDict()].map(([k, t]) => [k, k === 'fc.bias' ? t.to('int32') : t])), file);
  assert.throws(() => loadInto(buildModel('resnet20', 10), file), /'fc\.bias' is I32, the model's 'fc\.bias' is float32/);
  fs.rmSync(dir, { recursive: true });
});
