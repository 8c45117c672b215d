/**
 * A worker of test/dist/ddp-methods.test.ts: METHOD_STEPS DDP steps (findUnused for AdaFilter) of the float32
 * trainee on this rank's micro-batch; writes the trainable parameters and the float buffers (before
 * and after syncBuffers) to OUT/rank<R>.json.
 * argv: OUT KIND(bn|adafilter)
 */
import { ProcessGroup, DistributedDataParallel } from '../../../src/dist';
import { MethodKind, METHOD_STEPS, makeTrainee, backwardMicroBatch, trainableValues } from './ddp-methods';
import { launchedEnv, runWorker, writeRankResult } from './setup';

async function main(): Promise<void> {
  const [out, kind] = [process.argv[2], process.argv[3] as MethodKind];
  const env = launchedEnv('ddp-methods-worker');
  const group = await ProcessGroup.fromEnv(env, { timeoutMs: 120_000 });
  const t = makeTrainee(kind);
  t.module.train();
  const ddp = await DistributedDataParallel.wrap(group, t.module, { findUnused: kind === 'adafilter' });
  for (let step = 0; step < METHOD_STEPS; step++) {
    t.optimizer.zeroGrad();
    backwardMicroBatch(t, kind, step, env.rank, { ddp });
    t.optimizer.step();
  }
  const buffers = (): Record<string, number[]> => Object.fromEntries(t.module.namedBuffers()
    .filter(([, b]) => b.dtype === 'float32').map(([n, b]) => [n, b.toArray()]));
  const result = { params: trainableValues(t.module), buffersBefore: buffers(), buffersAfterSync: {} as Record<string, number[]> };
  await ddp.syncBuffers();
  result.buffersAfterSync = buffers();
  ddp.dispose();
  group.destroy();
  writeRankResult(out, env.rank, result);
}

runWorker(main);
