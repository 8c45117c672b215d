/**
 * A worker of test/dist/ddp-methods.test.ts: METHOD_STEPS DDP steps (findUnused for AdaFilter) of the float32
 * trainee on this rank's micro-batch; writes the trainable parameters and the float buffers (before
 * and after syncBuffers) to OUT/rank<R>.json.
 * argv: OUT KIND(bn|adafilter)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ProcessGroup, DistributedDataParallel, workerEnv } from '../../../src/dist';
import { MethodKind, METHOD_STEPS, makeTrainee, backwardMicroBatch, trainableValues } from './ddp-methods';

async function main(): Promise<void> {
  const [out, kind] = [process.argv[2], process.argv[3] as MethodKind];
  const env = workerEnv();
  if (!env) throw new Error('ddp-methods-worker: not started by a launcher');
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
  const file = path.join(out, `rank${env.rank}.json`);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(result));
  fs.renameSync(`${file}.tmp`, file);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).name}: ${(e as Error).message}\n`);
  process.exit(1);
});
