/**
 * A worker of test/dist/data-parallel.test.ts: one epoch of the float64 PlainCnn on 21 samples in
 * global batches of 8 (the last one 5, split 3 + 2), through DataParallel the way a trainer uses
 * it; rank 1 reports a non-finite loss at step STOP_STEP and every rank must stop there.
 * Writes OUT/rank<R>.json: final parameters, summed metrics, the step each rank stopped at.
 * argv: OUT MODE(train|stop)
 */
import { F, tidy } from '../../../src/index';
import { makeModel, makeData, makeOptimizer, parameterValues } from './ddp-training';
import { DP_SAMPLES, DP_BATCH, STOP_STEP } from './dp-values';
import { joinDataParallel, runWorker, writeRankResult } from './setup';

async function main(): Promise<void> {
  const [out, mode] = [process.argv[2], process.argv[3]];
  const dp = await joinDataParallel('dp-worker', 60_000);
  const all = makeData();
  const model = makeModel('plain', 7 + dp.rank);
  await dp.wrap(model);
  const opt = makeOptimizer(model);
  let lossSum = 0, seen = 0, stoppedAt = -1;
  for (let step = 0, start = 0; start < DP_SAMPLES; step++, start += DP_BATCH) {
    const n = Math.min(DP_BATCH, DP_SAMPLES - start);
    const [loss, count] = tidy(() => {
      // The global batch, as every rank's loader yields it; this rank trains on its share.
      const x = dp.take(all.x.narrow(0, start, n)), y = dp.take(all.y.narrow(0, start, n));
      opt.zeroGrad();
      const l = dp.forward(n, () => F.crossEntropy(model.forward(x), y), (r) => [r]);
      l.mul(dp.lossScale(n)).backward();
      return [l.item(), y.size(0)] as const;
    });
    const bad = mode === 'stop' && dp.rank === 1 && step === STOP_STEP ? NaN : loss;
    if (await dp.any(!Number.isFinite(bad))) { stoppedAt = step; break; }
    opt.step();
    lossSum += loss * count; seen += count;
  }
  const [totalLoss, totalSeen] = await dp.sum([lossSum, seen]);
  await dp.syncBuffers();
  const result = { final: parameterValues(model), totalLoss, totalSeen, stoppedAt, writes: dp.writes };
  await dp.barrier();
  dp.close();
  writeRankResult(out, dp.rank, result);
}

runWorker(main);
