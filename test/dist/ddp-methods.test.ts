/**
 * DDP with BN and with AdaFilter (gates forced per micro-batch so paths are skipped, findUnused), float32, 2 processes: the
 * trainable parameters after a few steps against one process that runs both ranks' micro-batches
 * (same images, same gate noise) and averages their gradients. BN's batch statistics are each
 * micro-batch's own, as in PyTorch's DDP without SyncBN, and the running statistics each rank's own
 * until syncBuffers gives every rank rank 0's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers/tmp';
import { runWorkers } from './run-workers';
import { MethodKind, METHOD_STEPS, makeTrainee, backwardMicroBatch, trainableValues } from './workers/ddp-methods';

type Params = Record<string, number[]>;
const RTOL = 1e-4, ATOL = 1e-6;

function oneProcess(kind: MethodKind): { initial: Params; final: Params } {
  const t = makeTrainee(kind);
  t.module.train();
  const initial = trainableValues(t.module);
  for (let step = 0; step < METHOD_STEPS; step++) {
    t.optimizer.zeroGrad();
    for (const part of [0, 1]) backwardMicroBatch(t, kind, step, part, { scale: 0.5 });
    t.optimizer.step();
  }
  const final = trainableValues(t.module);
  t.optimizer.dispose();
  t.module.dispose();
  return { initial, final };
}

async function compare(kind: MethodKind, t: { diagnostic(s: string): void }): Promise<void> {
  const out = tmpDir(`dist-ddp-${kind}`);
  await runWorkers('ddp-methods-worker', [out, kind]);
  const ranks = [0, 1].map((r) => JSON.parse(fs.readFileSync(path.join(out, `rank${r}.json`), 'utf8')) as
    { params: Params; buffersBefore: Params; buffersAfterSync: Params });
  const [r0, r1] = ranks.map((r) => r.params);
  assert.deepEqual(r1, r0, 'ranks differ');
  // BN's running statistics are each rank's own until syncBuffers gives everyone rank 0's.
  assert.ok(Object.keys(ranks[0].buffersBefore).length > 0);
  assert.notDeepEqual(ranks[1].buffersBefore, ranks[0].buffersBefore);
  for (const r of ranks) assert.deepEqual(r.buffersAfterSync, ranks[0].buffersBefore);
  const one = oneProcess(kind);
  assert.deepEqual(Object.keys(r0).sort(), Object.keys(one.final).sort());
  let worst = 0, moved = 0;
  for (const [name, values] of Object.entries(one.final)) {
    values.forEach((v, i) => {
      const d = Math.abs(r0[name][i] - v);
      worst = Math.max(worst, d / (ATOL + RTOL * Math.abs(v)));
      moved = Math.max(moved, Math.abs(v - one.initial[name][i]));
    });
  }
  t.diagnostic(`${kind}: worst |Δ| / (atol + rtol·|x|) = ${worst.toPrecision(3)}; largest parameter change ${moved.toPrecision(3)}`);
  assert.ok(worst <= 1, `${kind}: 2 ranks vs one process beyond rtol ${RTOL}, atol ${ATOL} (ratio ${worst})`);
  assert.ok(moved > 1e-3, `${kind}: training moved the parameters`);
}

test('CNN with BN, float32: 2 ranks within rtol 1e-4 of one process averaging the ranks\' micro-batch gradients', { timeout: 180_000 }, async (t) => {
  await compare('bn', t);
});

test('AdaFilter on resnet20, float32, findUnused: 2 ranks within rtol 1e-4 of one process averaging the ranks\' micro-batch gradients', { timeout: 300_000 }, async (t) => {
  await compare('adafilter', t);
});
