/**
 * DistributedDataParallel on c10d's Reducer, 2 processes × 1 thread on 127.0.0.1, against the
 * same training in this one process: tiny float64 CNNs, SGD with momentum and weight decay,
 * 10 steps, global batch 8 split the DistributedSampler way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers/tmp';
import { runWorkers } from './run-workers';
import {
  STEPS, ModelKind, makeModel, makeData, makeOptimizer, backwardOn, parameterValues,
} from './workers/ddp-training';

type Params = Record<string, number[]>;

async function trainTwoRanks(kind: ModelKind): Promise<{ initial: Params; final: Params }[]> {
  const out = tmpDir(`dist-ddp-${kind}`);
  await runWorkers('ddp-worker', [out, kind]);
  return [0, 1].map((r) => JSON.parse(fs.readFileSync(path.join(out, `rank${r}.json`), 'utf8')));
}

/** One process playing `parts` ranks: each micro-batch's loss scaled by 1/parts, gradients accumulated. */
function trainOneProcess(kind: ModelKind, parts: number): { initial: Params; final: Params } {
  const data = makeData();
  const model = makeModel(kind, 7);
  const initial = parameterValues(model);
  const opt = makeOptimizer(model);
  for (let step = 0; step < STEPS; step++) {
    opt.zeroGrad();
    for (let part = 0; part < parts; part++) backwardOn(model, data, step, part, parts, { scale: 1 / parts });
    opt.step();
  }
  const final = parameterValues(model);
  opt.dispose();
  model.dispose();
  data.x.dispose();
  data.y.dispose();
  return { initial, final };
}

function maxDiff(a: Params, b: Params): number {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  let m = 0;
  for (const k of Object.keys(a)) a[k].forEach((v, i) => { m = Math.max(m, Math.abs(v - b[k][i])); });
  return m;
}

test('plain CNN: 2 ranks end within 1e-10 of one process on the global batch, both ranks bit-identical', { timeout: 180_000 }, async (t) => {
  const [r0, r1] = await trainTwoRanks('plain');
  const one = trainOneProcess('plain', 1);
  // Rank 1 started elsewhere, so the broadcast from rank 0 mattered; training moved the weights.
  assert.ok(maxDiff(r0.initial, r1.initial) > 1e-3);
  assert.deepEqual(r0.initial, one.initial);
  assert.ok(maxDiff(one.initial, one.final) > 1e-2);
  assert.deepEqual(r1.final, r0.final, 'ranks differ');
  const d = maxDiff(r0.final, one.final);
  t.diagnostic(`2 ranks vs 1 process: max |Δ| ${d}`);
  assert.ok(d <= 1e-10, `2 ranks vs 1 process: max |Δ| ${d}`);
});

test('gated CNN with findUnused: paths used by one rank, by both and by none; within 1e-10 of one process averaging the ranks\' micro-batches', { timeout: 180_000 }, async (t) => {
  const [r0, r1] = await trainTwoRanks('gated');
  const one = trainOneProcess('gated', 2);
  assert.deepEqual(r1.final, r0.final, 'ranks differ');
  const d = maxDiff(r0.final, one.final);
  t.diagnostic(`2 ranks vs 1 process: max |Δ| ${d}`);
  assert.ok(d <= 1e-10, `2 ranks vs 1 process: max |Δ| ${d}`);
  // The head no step uses keeps rank 0's initial weights (no gradient, so no decay either).
  assert.deepEqual(r0.final['neverUsed.weight'], r0.initial['neverUsed.weight']);
  // Both paths trained: each was skipped by some rank in some step, and used in others.
  assert.ok(maxDiff({ w: one.initial['pathA.weight'] }, { w: r0.final['pathA.weight'] }) > 1e-3);
  assert.ok(maxDiff({ w: one.initial['pathB.weight'] }, { w: r0.final['pathB.weight'] }) > 1e-3);
});
