/** The pure parts of data-parallel training: a rank's share of a loader batch, the workers' command line. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { batchShare } from '../../src/train/data-parallel';
import { workerArgs } from '../../src/dist/relaunch';
import { resolveOptions } from '../../src/train/options';
import * as os from 'node:os';

test('batchShare: rank r takes rows r, r + W, … with their pixels, labels and feature-cache rows; the shares partition the batch', () => {
  const n = 5, per = 2 * 1 * 3; // N×2×1×3
  const b = { x: Float32Array.from({ length: n * per }, (_, i) => i), y: Int32Array.from([4, 3, 2, 1, 0]), shape: [n, 2, 1, 3] as [number, number, number, number], rows: Int32Array.from([10, 11, 12, 13, 14]) };
  const [s0, s1] = [0, 1].map((r) => batchShare(b, r, 2));
  assert.deepEqual(s0.shape, [3, 2, 1, 3]);
  assert.deepEqual(s1.shape, [2, 2, 1, 3]);
  assert.deepEqual([...s0.y], [4, 2, 0]);
  assert.deepEqual([...s1.rows!], [11, 13]);
  // Image j of the share is image r + jW of the batch, pixel for pixel.
  assert.deepEqual([...s1.x], [...b.x.subarray(1 * per, 2 * per), ...b.x.subarray(3 * per, 4 * per)]);
  assert.deepEqual([...s0.x.subarray(2 * per)], [...b.x.subarray(4 * per)]);
  // Without pixels (a feature cache's batches) the share has none either.
  assert.equal(batchShare({ ...b, x: new Float32Array(0) }, 0, 2).x.length, 0);
});

test('workerArgs: the launcher\'s flags go (both spellings), everything else stays in order', () => {
  assert.deepEqual(
    workerArgs(['--data', 'mnist', '--nproc-per-node', '2', '--nnodes=2', '--node-rank', '1', '--master-addr', 'h', '--master-port=29500', '--dist-timeout', '60', '--dist-iface', 'eth0', '--resume']),
    ['--data', 'mnist', '--dist-timeout', '60', '--dist-iface', 'eth0', '--resume']);
  assert.deepEqual(workerArgs(['--out', 'x', '--', '--nproc-per-node', '2']), ['--out', 'x', '--', '--nproc-per-node', '2']);
});

test('a launcher\'s worker defaults to the OMP_NUM_THREADS it was given (torchrun: 1); --threads still wins; a plain process ignores it', () => {
  const saved = { WORLD_SIZE: process.env.WORLD_SIZE, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS };
  try {
    process.env.OMP_NUM_THREADS = '3';
    delete process.env.WORLD_SIZE;
    const plain = resolveOptions({ data: 'mnist' }).threads;
    assert.equal(plain, Math.max(1, Math.min(4, os.cpus().length)));
    process.env.WORLD_SIZE = '2';
    assert.equal(resolveOptions({ data: 'mnist' }).threads, 3);
    assert.equal(resolveOptions({ data: 'mnist', threads: 2 }).threads, 2);
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
});
