/**
 * A worker of test/dist/noise.test.ts: for each kind, the float64 noisy training on this rank's
 * share of the global batch under DDP (findUnused: the gated methods skip paths); writes the
 * trained parameters of every kind to OUT/rank<R>.json.
 * argv: OUT NOISE_SEED
 */
import { NOISE_KINDS, makeNoiseTrainee, noiseBatch, trainNoisy, trainedValues } from './noise-training';
import { joinDataParallel, runWorker, writeRankResult } from './setup';

async function main(): Promise<void> {
  const [out, seed] = [process.argv[2], Number(process.argv[3])];
  const dp = await joinDataParallel('noise-worker', 120_000);
  const batch = noiseBatch();
  const result: Record<string, Record<string, number[]>> = {};
  for (const kind of NOISE_KINDS) {
    const t = makeNoiseTrainee(kind);
    await dp.wrap(t.model, { findUnused: kind !== 'tap-probe' });
    trainNoisy(t, batch, seed, dp);
    result[kind] = trainedValues(t.model);
    dp.unwrap();
    t.optimizer.dispose();
    t.model.dispose();
  }
  dp.close();
  writeRankResult(out, dp.rank, result);
}

runWorker(main);
