import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openDataset } from '../../src/data/registry';
import { Batch, createLoader, datasetStats } from '../../src/data/loader';
import { applyTransform, resolveTransform, TransformSpec } from '../../src/data/transforms';
import { Dataset, RawImage } from '../../src/data/dataset';
import { Rng } from '../../src/data/rng';
import { InputError } from '../../src/errors';
import { twoClassFolder, writeImage } from './helpers';

const AUGMENT: TransformSpec = { size: 32, channels: 3, crop: 'random', pad: 3, flip: true, rotate: 15, normalize: 'dataset' };

async function collect(ds: Dataset, workers: number, opts: { seed?: number; epoch?: number; prefetch?: number; batches?: number } = {}): Promise<Batch[]> {
  const loader = await createLoader(ds, { batch: 50, workers, seed: opts.seed ?? 11, prefetch: opts.prefetch, transform: AUGMENT });
  const out: Batch[] = [];
  try {
    for await (const b of loader.epoch(opts.epoch ?? 2)) { out.push(b); if (out.length === (opts.batches ?? 4)) break; }
  } finally {
    await loader.close();
  }
  return out;
}

function sameBits(a: Batch[], b: Batch[]): boolean {
  return a.length === b.length && a.every((x, i) =>
    Buffer.from(x.x.buffer, x.x.byteOffset, x.x.byteLength).equals(Buffer.from(b[i].x.buffer, b[i].x.byteOffset, b[i].x.byteLength)) &&
    Buffer.from(x.y.buffer).equals(Buffer.from(b[i].y.buffer)));
}

test('same seed → the same augmented batches bit for bit, for 0, 1 and 2 workers and any prefetch', async () => {
  const ds = await openDataset('quickdraw:0-29', { seed: 4 });
  const ref = await collect(ds, 0);
  assert.equal(ref.length, 4);
  assert.deepEqual(ref[0].shape, [50, 3, 32, 32]);
  assert.ok(ref[0].x.every(Number.isFinite));
  assert.ok(sameBits(ref, await collect(ds, 1)));
  assert.ok(sameBits(ref, await collect(ds, 2, { prefetch: 1 })));
  assert.ok(sameBits(ref, await collect(ds, 2, { prefetch: 7 })));
  assert.ok(!sameBits(ref, await collect(ds, 2, { seed: 12 })), 'another seed, other batches');
  assert.ok(!sameBits(ref, await collect(ds, 0, { epoch: 3 })), 'another epoch, other batches');
});

test('an epoch visits every item once with its own label; dropLast and numBatches agree', async () => {
  const ds = await openDataset('quickdraw:0-2', { seed: 0, val: 0, test: 0 });
  const labelOf = new Map(ds.splits.train.map((it) => [it.index, it.label]));
  for (const dropLast of [false, true]) {
    const loader = await createLoader(ds, { batch: 64, workers: 2, dropLast, transform: { size: 28, channels: 1 } });
    const order = loader.order(0);
    let n = 0, batches = 0;
    for await (const b of loader.epoch(0)) {
      for (let i = 0; i < b.y.length; i++) assert.equal(b.y[i], labelOf.get(order[n + i].index));
      // Without augmentation at the native size the pixels come through exactly.
      const first = new Uint8Array((ds.storage as { pixels: SharedArrayBuffer }).pixels, order[n].index * 784, 784);
      for (let k = 0; k < 784; k++) assert.ok(Math.abs(b.x[k] - first[k] / 255) < 1e-7);
      n += b.y.length; batches++;
    }
    await loader.close();
    assert.equal(batches, loader.numBatches);
    assert.equal(n, dropLast ? 256 : 300);
  }
});

function gradient(w: number, h: number, c: 1 | 3): RawImage {
  const data = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) data[(y * w + x) * c + k] = (x * 20 + y * 3 + k * 50) % 256;
  return { data, width: w, height: h, channels: c };
}

test('transforms: flip mirrors, rotation keeps the centre, resize and crop sizes, channel conversion, ImageNet normalisation', () => {
  const img = gradient(10, 10, 3);
  const plain = resolveTransform({ size: 10, channels: 3 });
  const base = new Float32Array(300);
  applyTransform(img, plain, null, base, 0);
  const flipT = resolveTransform({ size: 10, channels: 3, flip: true });
  let flipped = 0, kept = 0;
  for (let s = 0; s < 20; s++) {
    const out = new Float32Array(300);
    applyTransform(img, flipT, new Rng(s), out, 0);
    const isSame = out.every((v, i) => v === base[i]);
    const isMirror = out.every((v, i) => v === base[Math.floor(i / 10) * 10 + 9 - (i % 10)]);
    assert.ok(isSame || isMirror);
    if (isSame) kept++; else flipped++;
  }
  assert.ok(flipped > 3 && kept > 3, `flip should be a coin toss: ${flipped}/${kept}`);

  const odd = gradient(9, 9, 1);
  const rot = resolveTransform({ size: 9, channels: 1, rotate: 90 });
  const o1 = new Float32Array(81), o2 = new Float32Array(81);
  applyTransform(odd, resolveTransform({ size: 9, channels: 1 }), null, o1, 0);
  applyTransform(odd, rot, new Rng(3), o2, 0);
  assert.equal(o2[40], o1[40], 'the centre pixel stays');
  assert.notDeepEqual(o2, o1);

  const up = new Float32Array(3 * 20 * 16);
  applyTransform(gradient(10, 8, 1), resolveTransform({ size: [20, 16], channels: 3, resize: 20 }), null, up, 0);
  for (let k = 0; k < 320; k++) assert.equal(up[k], up[320 + k]); // gray repeated to 3 channels

  const gray = new Float32Array(100);
  applyTransform(img, resolveTransform({ size: 10, channels: 1 }), null, gray, 0);
  assert.ok(Math.abs(gray[0] - (0.299 * 0 + 0.587 * 50 + 0.114 * 100) / 255) < 1e-6);

  const norm = new Float32Array(300);
  applyTransform(img, resolveTransform({ size: 10, channels: 3, normalize: 'imagenet' }), null, norm, 0);
  assert.ok(Math.abs(norm[100 + 1] - (70 / 255 - 0.456) / 0.224) < 1e-5);
  assert.throws(() => resolveTransform({ size: 0, channels: 3 }), InputError);
  assert.throws(() => resolveTransform({ size: 8, channels: 3, normalize: 'dataset' }), /needs the dataset's statistics/);
});

test('dataset statistics: MNIST mean 0.1307, std 0.3081', async () => {
  const ds = await openDataset('mnist', { val: 0 });
  const s = await datasetStats(ds, 1);
  assert.ok(Math.abs(s.mean[0] - 0.1307) < 0.0005, `mean ${s.mean[0]}`);
  assert.ok(Math.abs(s.std[0] - 0.3081) < 0.0005, `std ${s.std[0]}`);
});

test('folder loader: a file that vanishes after opening fails the batch with an InputError naming it', async () => {
  const dir = await twoClassFolder('vanish');
  await writeImage(path.join(dir, 'a', 'big.jpg'), 'jpg', [9, 9, 9], 400, 300);
  const ds = await openDataset(dir, { val: 0, test: 0 });
  const loader = await createLoader(ds, { batch: 8, workers: 1, transform: { size: 16, channels: 3, crop: 'random', flip: true } });
  const [b] = await (async () => { const r: Batch[] = []; for await (const x of loader.epoch(0)) r.push(x); return r; })();
  assert.deepEqual(b.shape, [5, 3, 16, 16]);
  fs.unlinkSync(path.join(dir, 'a', '2.png'));
  await assert.rejects((async () => { for await (const _ of loader.epoch(1)) { /* drain */ } })(),
    (e: unknown) => e instanceof InputError && e.message.includes('2.png') && /unreadable/.test(e.message));
  await loader.close();
});

test('runDataBench reports a positive images/s for an augmented pipeline', async () => {
  const { runDataBench } = await import('../../bench/data');
  const r = await runDataBench({ data: 'quickdraw:0-9', workers: 1, seconds: 0.5, batch: 16 });
  assert.equal(r.workers, 1);
  assert.ok(r.images_per_s > 0 && r.images > 0, JSON.stringify(r));
});
