/**
 * A worker of test/dist/noise.test.ts: for each kind, the float64 noisy training on this rank's
 * share of the global batch under DDP (findUnused: the gated methods skip paths); writes the
 * trained parameters of every kind to OUT/rank<R>.json.
 * argv: OUT NOISE_SEED
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataParallel } from '../../../src/dist/data-parallel';
import { NOISE_KINDS, makeNoiseTrainee, noiseBatch, trainNoisy, trainedValues } from './noise-training';

async function main(): Promise<void> {
  const [out, seed] = [process.argv[2], Number(process.argv[3])];
  const dp = await DataParallel.join({ timeoutMs: 120_000 });
  if (!dp) throw new Error('noise-worker: not started as one of several workers');
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
  const file = path.join(out, `rank${dp.rank}.json`);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(result));
  fs.renameSync(`${file}.tmp`, file);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).name}: ${(e as Error).message}\n`);
  process.exit(1);
});
