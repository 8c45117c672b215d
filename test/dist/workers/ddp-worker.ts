/**
 * A worker of test/dist/ddp.test.ts: trains a tiny CNN under DistributedDataParallel for STEPS
 * steps on its DistributedSampler share of each global batch, and writes its initial (before the
 * sync from rank 0) and final parameters to OUT/rank<R>.json. argv: OUT MODEL(plain|gated) [IFACE]
 * (IFACE: the network interface Gloo binds to, --dist-iface's role).
 */
import { ProcessGroup, DistributedDataParallel } from '../../../src/dist';
import { STEPS, ModelKind, makeModel, makeData, makeOptimizer, backwardOn, parameterValues } from './ddp-training';
import { launchedEnv, runWorker, writeRankResult } from './setup';

async function main(): Promise<void> {
  const [out, kind, iface] = [process.argv[2], process.argv[3] as ModelKind, process.argv[4]];
  const env = launchedEnv('ddp-worker');
  const group = await ProcessGroup.fromEnv(env, { timeoutMs: 60_000, ...(iface ? { iface } : {}) });
  const data = makeData();
  // Each rank starts from its own weights: DDP must replace them with rank 0's.
  const model = makeModel(kind, 7 + env.rank);
  const initial = parameterValues(model);
  const ddp = await DistributedDataParallel.wrap(group, model, { findUnused: kind === 'gated' });
  const opt = makeOptimizer(model);
  for (let step = 0; step < STEPS; step++) {
    opt.zeroGrad();
    backwardOn(model, data, step, env.rank, env.worldSize, { ddp });
    opt.step();
  }
  const result = { initial, final: parameterValues(model) };
  ddp.dispose();
  await group.barrier();
  group.destroy();
  writeRankResult(out, env.rank, result);
}

runWorker(main);
