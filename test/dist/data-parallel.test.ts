/**
 * DataParallel, the trainer-facing side of the dist module: DistributedSampler's split of a
 * global batch (uneven at an epoch's end, with the loss scaled so DDP's average is still the
 * global mean), collective decisions and summed metrics, 2 processes against one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { F, tidy } from '../../src/index';
import { shareOf } from '../../src/dist';
import { tmpDir } from '../helpers/tmp';
import { runWorkers } from './run-workers';
import { makeModel, makeData, makeOptimizer, parameterValues } from './workers/ddp-training';
import { DP_SAMPLES, DP_BATCH, STOP_STEP } from './workers/dp-values';

type Params = Record<string, number[]>;
interface RankResult { final: Params; totalLoss: number; totalSeen: number; stoppedAt: number; writes: boolean }

function readRanks(out: string): RankResult[] {
  return [0, 1].map((r) => JSON.parse(fs.readFileSync(path.join(out, `rank${r}.json`), 'utf8')));
}

test('shareOf: rank r takes rows r, r + W, ...; the shares of a batch are disjoint and cover it', () => {
  assert.deepEqual([0, 1].map((r) => shareOf(8, r, 2)), [[0, 2, 4, 6], [1, 3, 5, 7]]);
  assert.deepEqual([0, 1].map((r) => shareOf(5, r, 2)), [[0, 2, 4], [1, 3]]);
  assert.deepEqual([0, 1, 2].map((r) => shareOf(7, r, 3)), [[0, 3, 6], [1, 4], [2, 5]]);
});

test('one epoch with an uneven last batch (3 + 2 of 5): 2 ranks within 1e-10 of one process, metrics summed over ranks', { timeout: 120_000 }, async (t) => {
  const out = tmpDir('dist-dp-train');
  await runWorkers('dp-worker', [out, 'train']);
  const ranks = readRanks(out);
  // One process on the same global batches.
  const all = makeData();
  const model = makeModel('plain', 7);
  const opt = makeOptimizer(model);
  let lossSum = 0;
  for (let start = 0; start < DP_SAMPLES; start += DP_BATCH) {
    const n = Math.min(DP_BATCH, DP_SAMPLES - start);
    lossSum += tidy(() => {
      opt.zeroGrad();
      const l = F.crossEntropy(model.forward(all.x.narrow(0, start, n)), all.y.narrow(0, start, n));
      l.backward();
      return l.item() * n;
    });
    opt.step();
  }
  const one = parameterValues(model);
  let worst = 0;
  for (const [k, v] of Object.entries(one)) v.forEach((x, i) => { worst = Math.max(worst, Math.abs(x - ranks[0].final[k][i])); });
  t.diagnostic(`2 ranks vs 1 process: max |Δ| ${worst}`);
  assert.ok(worst <= 1e-10, `max |Δ| ${worst}`);
  assert.deepEqual(ranks[1].final, ranks[0].final);
  for (const r of ranks) {
    assert.equal(r.totalSeen, DP_SAMPLES);
    assert.ok(Math.abs(r.totalLoss - lossSum) <= 1e-9 * Math.abs(lossSum), `summed loss ${r.totalLoss} vs ${lossSum}`);
    assert.equal(r.stoppedAt, -1);
  }
  assert.deepEqual(ranks.map((r) => r.writes), [true, false]);
});

test('a non-finite loss on one rank: every rank learns it in the same step and stops there', { timeout: 120_000 }, async () => {
  const out = tmpDir('dist-dp-stop');
  await runWorkers('dp-worker', [out, 'stop']);
  const ranks = readRanks(out);
  assert.deepEqual(ranks.map((r) => r.stoppedAt), [STOP_STEP, STOP_STEP]);
  // Both stopped before stepping: they still agree, and only the steps before counted.
  assert.deepEqual(ranks[1].final, ranks[0].final);
  assert.deepEqual(ranks.map((r) => r.totalSeen), [DP_BATCH * STOP_STEP, DP_BATCH * STOP_STEP]);
});
