/**
 * A worker of test/dist/ddp.test.ts: trains a tiny CNN under DistributedDataParallel for STEPS
 * steps on its DistributedSampler share of each global batch, and writes its initial (before the
 * sync from rank 0) and final parameters to OUT/rank<R>.json. argv: OUT MODEL(plain|gated) [IFACE]
 * (IFACE: the network interface Gloo binds to, --dist-iface's role).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ProcessGroup, DistributedDataParallel, workerEnv } from '../../../src/dist';
import { STEPS, ModelKind, makeModel, makeData, makeOptimizer, backwardOn, parameterValues } from './ddp-training';

async function main(): Promise<void> {
  const [out, kind, iface] = [process.argv[2], process.argv[3] as ModelKind, process.argv[4]];
  const env = workerEnv();
  if (!env) throw new Error('ddp-worker: not started by a launcher');
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
  const file = path.join(out, `rank${env.rank}.json`);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(result));
  fs.renameSync(`${file}.tmp`, file);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).name}: ${(e as Error).message}\n`);
  process.exit(1);
});
