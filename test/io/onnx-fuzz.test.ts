import { Rng } from '../../src/data/rng';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { manualSeed } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { InputError, isInputError } from '../../src/errors';
import { buildModel } from '../../src/models/registry';
import { Conv2d } from '../../src/nn/conv';
import { exportOnnx, encodeOnnx } from '../../src/io/onnx/export';
import { importOnnx, importOnnxWithReport, decodeOnnx, tensorValues } from '../../src/io/onnx/import';
import { ProtoWriter } from '../../src/io/onnx/proto';

setNumThreads(1);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adafilter-onnx-fuzz-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

/** Deterministic, so a failure names a reproducible case. */
function rng(seed: number): () => number {
  const g = new Rng(seed);
  return () => g.float();
}

/** Decodes and reads every initializer: an InputError or a result, nothing else. */
function decodeAll(bytes: Uint8Array, label: string): void {
  try {
    const m = decodeOnnx(bytes, 'f.onnx');
    for (const t of m.graph.initializers) {
      try { tensorValues(t, 'f.onnx'); } catch (e) { if (!isInputError(e)) throw e; }
    }
  } catch (e) {
    if (!isInputError(e)) assert.fail(`${label}: ${(e as Error)?.stack ?? e}`);
  }
}

// A small model keeps each decode cheap: resnet20-sized layers would only repeat the same structure.
manualSeed(0);
const small = buildModel('resnet20', 3);
const seedBytes = encodeOnnx(small, { inputShape: [3, 32, 32] });

// A hang shows as the test's timeout (generous: tests never assert timings, the machine may be loaded).
test('truncations, bit flips, byte overwrites and splices: InputError or a valid model, never a crash', { timeout: 600_000 }, () => {
  const r = rng(1);
  const heap0 = process.memoryUsage().heapUsed;
  for (let i = 0; i < 400; i++) {
    const b = Uint8Array.from(seedBytes);
    const kind = i % 4;
    let bytes: Uint8Array = b;
    if (kind === 0) bytes = b.subarray(0, Math.floor(r() * b.length));
    else if (kind === 1) for (let j = 0; j < 1 + Math.floor(r() * 8); j++) { const p = Math.floor(r() * b.length); b[p] ^= 1 << Math.floor(r() * 8); }
    else if (kind === 2) for (let j = 0; j < 1 + Math.floor(r() * 4); j++) b[Math.floor(r() * b.length)] = [0x00, 0xff, 0x80, 0x7f][Math.floor(r() * 4)];
    else {
      const a = Math.floor(r() * b.length), c = Math.floor(r() * b.length);
      bytes = new Uint8Array([...b.subarray(0, Math.min(a, c)), ...b.subarray(Math.max(a, c))]);
    }
    decodeAll(bytes, `case ${i} (kind ${kind})`);
  }
  // Only views into the input are kept while decoding: memory stays near the inputs' size.
  assert.ok(process.memoryUsage().heapUsed - heap0 < 400e6, 'heap grew by more than 400 MB');
});

test('huge length prefixes, over-long varints, group wire types and random bytes are InputErrors', () => {
  const cases: [string, Uint8Array][] = [
    ['length 2^62', new Uint8Array([0x3a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40])],
    ['length past the end', new Uint8Array([0x3a, 0xff, 0xff, 0xff, 0x0f, 0x01])],
    ['11-byte varint', new Uint8Array([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])],
    ['truncated varint', new Uint8Array([0x08, 0xff])],
    ['start group', new Uint8Array([0x0b])],
    ['field 0', new Uint8Array([0x00, 0x01])],
    ['truncated fixed64', new Uint8Array([0x09, 1, 2, 3])],
    ['no graph', new ProtoWriter().int(1, 8).finish()],
    ['graph as varint', new Uint8Array([0x38, 0x01])],
  ];
  const r = rng(2);
  for (let i = 0; i < 100; i++) cases.push([`random ${i}`, Uint8Array.from({ length: 1 + Math.floor(r() * 300) }, () => Math.floor(r() * 256))]);
  // A tensor that claims 2^40 elements but carries 8 bytes: refused before anything is allocated.
  const hugeTensor = new ProtoWriter().packedInts(1, [2 ** 20, 2 ** 20]).int(2, 1).string(8, 'w').bytes(9, new Uint8Array(8));
  const g = new ProtoWriter().message(5, hugeTensor);
  const hugeModel = new ProtoWriter().int(1, 8).message(7, g).finish();
  cases.push(['huge dims', hugeModel]);
  for (const [label, bytes] of cases) {
    assert.throws(() => {
      const m = decodeOnnx(bytes, 'f.onnx');
      for (const t of m.graph.initializers) tensorValues(t, 'f.onnx');
      // Anything that decodes must still be refused as a model.
      throw new InputError('decoded');
    }, (e: Error) => isInputError(e), label);
  }
});

test('deeply nested subgraphs stop at a fixed depth instead of exhausting the stack', () => {
  // graph → node → attribute (GRAPH) → graph → … 5000 levels deep.
  let inner = new ProtoWriter().string(2, 'leaf');
  for (let i = 0; i < 5000; i++) {
    const attrW = new ProtoWriter().string(1, 'body').message(6, inner).int(20, 5);
    const node = new ProtoWriter().string(4, 'Loop').message(5, attrW);
    inner = new ProtoWriter().message(1, node);
  }
  const bytes = new ProtoWriter().int(1, 8).message(7, inner).finish();
  assert.throws(() => decodeOnnx(bytes, 'deep.onnx'), (e: Error) => isInputError(e) && /nested deeper than 8/.test(e.message));
});

test('mutated files on disk: importOnnx throws InputError only, and intact ones load', () => {
  const file = path.join(dir, 'small.onnx');
  exportOnnx(small, file, { inputShape: [3, 32, 32] });
  const { report } = importOnnxWithReport(file, 'resnet20');
  assert.equal(report.numClasses, 3);
  const r = rng(3);
  let loaded = 0;
  for (let i = 0; i < 40; i++) {
    const b = Uint8Array.from(seedBytes);
    if (i % 2) for (let j = 0; j < 3; j++) b[Math.floor(r() * b.length)] ^= 1 << Math.floor(r() * 8);
    const f = path.join(dir, `m${i}.onnx`);
    fs.writeFileSync(f, i % 2 ? b : b.subarray(0, Math.floor(r() * b.length)));
    try {
      importOnnx(f, 'resnet20').dispose();
      loaded++;
    } catch (e) {
      if (!isInputError(e)) assert.fail(`file ${i}: ${(e as Error)?.stack ?? e}`);
    }
  }
  // Bit flips inside weight data leave a loadable file; that is fine, the point is: nothing else happens.
  assert.ok(loaded < 40);
  assert.ok(small.modules().some((m) => m instanceof Conv2d));
});
