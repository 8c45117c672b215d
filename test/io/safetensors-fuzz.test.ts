/**
 * Mutated safetensors files (truncated, bit-flipped, huge or random header lengths, spliced JSON)
 * must give an InputError or a valid result: no other exception, no crash, no hang, bounded memory.
 */
import { Rng } from '../../src/data/rng';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tensor } from '../../src/engine/creation';
import { Tensor } from '../../src/engine/tensor';
import { InputError } from '../../src/errors';
import { decodeSafetensors, encodeSafetensors, loadSafetensors } from '../../src/io/safetensors';

/** Deterministic, so a failure names a reproducible case. */
function rng(seed: number): () => number {
  const g = new Rng(seed);
  return () => g.float();
}

function seedFile(): Buffer {
  const src = new Map<string, Tensor>([
    ['conv.weight', tensor(Array.from({ length: 24 }, (_, i) => i / 7), { shape: [2, 3, 2, 2] })],
    ['bn.num_batches_tracked', tensor([3], { dtype: 'int64' }).reshape()],
    ['mask', tensor([true, false], { dtype: 'bool' })],
    ['half', tensor([1, 2, 3], { dtype: 'float16' })],
    ['ids', tensor([1, 2], { dtype: 'int32' })],
  ]);
  const b = encodeSafetensors(src, { arch: 'fuzz' });
  for (const t of src.values()) t.dispose();
  return b;
}

type Outcome = 'ok' | 'rejected';

function attempt(bytes: Uint8Array, label: string): Outcome {
  try {
    const { tensors } = decodeSafetensors(bytes, label);
    for (const t of tensors.values()) {
      t.data(); // the tensor is usable
      t.dispose();
    }
    return 'ok';
  } catch (e) {
    if (e instanceof InputError && e.message.startsWith(`${label}: `) && !e.message.includes('\n')) return 'rejected';
    throw new Error(`${label}: unexpected failure ${(e as Error).stack}`);
  }
}

test('a few hundred mutated files: InputError or a valid result, bounded memory (a hang fails by timeout)', { timeout: 600_000 }, () => {
  const base = seedFile();
  const headerLen = Number(base.readBigUInt64LE(0));
  const r = rng(12345);
  const pick = (n: number) => Math.floor(r() * n);
  const counts: Record<string, Record<Outcome, number>> = {};
  const rssBefore = process.memoryUsage().rss;
  const mutations: [string, () => Buffer][] = [
    ['truncate', () => base.subarray(0, pick(base.length))],
    ['bitflip-header', () => {
      const b = Buffer.from(base);
      for (let k = 1 + pick(4); k > 0; k--) { const i = 8 + pick(headerLen); b[i] ^= 1 << pick(8); }
      return b;
    }],
    ['bitflip-anywhere', () => {
      const b = Buffer.from(base);
      for (let k = 1 + pick(8); k > 0; k--) { const i = pick(b.length); b[i] ^= 1 << pick(8); }
      return b;
    }],
    ['length', () => {
      const b = Buffer.from(base);
      const choices = [0n, 1n, BigInt(headerLen - 1), BigInt(headerLen + 1), BigInt(b.length), 2n ** 63n, 2n ** 64n - 1n, BigInt(pick(2 ** 31))];
      b.writeBigUInt64LE(choices[pick(choices.length)]);
      return b;
    }],
    ['digits', () => {
      // Rewrite one number in the header (offsets, shapes) to another plausible or hostile one.
      const text = base.subarray(8, 8 + headerLen).toString('latin1');
      const nums = [...text.matchAll(/\d+/g)];
      const m = nums[pick(nums.length)];
      const repl = ['0', '1', '7', '4294967296', '9007199254740993', '1e309', '-4', '3.5', String(pick(200))][pick(9)];
      const h = Buffer.from(text.slice(0, m.index!) + repl + text.slice(m.index! + m[0].length), 'latin1');
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(h.length));
      return Buffer.concat([len, h, base.subarray(8 + headerLen)]);
    }],
    ['splice', () => {
      // Delete or duplicate a slice of the header, keeping the length field consistent.
      const h = base.subarray(8, 8 + headerLen);
      const a = pick(h.length), z = a + pick(Math.min(40, h.length - a));
      const nh = r() < 0.5 ? Buffer.concat([h.subarray(0, a), h.subarray(z)]) : Buffer.concat([h.subarray(0, z), h.subarray(a)]);
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(nh.length));
      return Buffer.concat([len, nh, base.subarray(8 + headerLen)]);
    }],
    ['garbage', () => Buffer.from(Array.from({ length: pick(300) }, () => pick(256)))],
  ];
  for (let i = 0; i < 420; i++) {
    const [kind, make] = mutations[i % mutations.length];
    const out = attempt(make(), `fuzz-${i}.safetensors`);
    counts[kind] ??= { ok: 0, rejected: 0 };
    counts[kind][out]++;
  }
  assert.ok(process.memoryUsage().rss - rssBefore < 100e6, 'memory stayed bounded');
  for (const kind of ['truncate', 'length', 'garbage']) assert.ok(counts[kind].rejected > 50, `${kind}: ${JSON.stringify(counts[kind])}`);
  assert.ok(counts['bitflip-anywhere'].ok > 0, 'flips in tensor data still load');
});

test('mutated files on disk: the file reader fails the same way', () => {
  const base = seedFile();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adafilter-fuzz-'));
  const r = rng(7);
  let rejected = 0;
  for (let i = 0; i < 40; i++) {
    const b = Buffer.from(base.subarray(0, i % 2 ? base.length : Math.floor(r() * base.length)));
    if (i % 2) b[Math.floor(r() * b.length)] ^= 1 << Math.floor(r() * 8);
    const file = path.join(dir, `m${i}.safetensors`);
    fs.writeFileSync(file, b);
    try {
      for (const t of loadSafetensors(file).values()) t.dispose();
    } catch (e) {
      assert.ok(e instanceof InputError && e.message.startsWith(`${file}: `), String(e));
      rejected++;
    }
  }
  assert.ok(rejected >= 20);
  fs.rmSync(dir, { recursive: true });
});
