/**
 * c10d collectives between real processes (2 workers on 127.0.0.1, started by our launcher with
 * torchrun's environment): all-reduce in every op, broadcast and barrier, against the values the
 * test computes itself from what each rank contributed. Float64 sums of two numbers are exact
 * roundings whatever the order, so the results must match bit for bit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers/tmp';
import { runWorkers } from './run-workers';
import { rankValues, BROADCAST_ROOT } from './workers/collectives-values';

interface RankResult {
  rank: number; worldSize: number; threads: number;
  env: { rank: number; worldSize: number; localRank: number; localWorldSize: number; masterAddr: string; masterPort: number };
  sum: number[]; max: number[]; min: number[]; product: number[]; intSum: number[]; broadcast: number[];
  markerSeenAfterBarrier: boolean;
}

test('2 processes: all-reduce, broadcast and barrier give the hand-computed values on both ranks', { timeout: 120_000 }, async () => {
  const out = tmpDir('dist-collectives');
  await runWorkers('collectives-worker', [out]);
  const results = [0, 1].map((r) => JSON.parse(fs.readFileSync(path.join(out, `rank${r}.json`), 'utf8')) as RankResult);
  const [a, b] = [rankValues(0), rankValues(1)];
  const expected = {
    sum: a.floats.map((x, i) => x + b.floats[i]),
    max: a.floats.map((x, i) => Math.max(x, b.floats[i])),
    min: a.floats.map((x, i) => Math.min(x, b.floats[i])),
    product: a.floats.map((x, i) => x * b.floats[i]),
    intSum: a.ints.map((x, i) => x + b.ints[i]),
    broadcast: rankValues(BROADCAST_ROOT).floats,
  };
  // The sums round (0.1 + 0.4 is not 0.5 in binary; the check would pass on a wrong sum only by luck).
  assert.notDeepEqual(expected.sum, expected.max);
  for (const r of results) {
    assert.equal(r.worldSize, 2);
    assert.deepEqual(r.env, { ...r.env, rank: r.rank, worldSize: 2, localRank: r.rank, localWorldSize: 2, masterAddr: '127.0.0.1' });
    assert.equal(r.threads, 1, `rank ${r.rank}: one intra-op thread per worker`);
    for (const k of ['sum', 'max', 'min', 'product', 'intSum', 'broadcast'] as const) {
      assert.deepEqual(r[k], expected[k], `rank ${r.rank} ${k}`);
    }
    assert.equal(r.markerSeenAfterBarrier, true, `rank ${r.rank}: the file written before the barrier`);
  }
  assert.deepEqual(results.map((r) => r.rank), [0, 1]);
});
