/**
 * A worker of test/dist/collectives.test.ts, started by the launcher: all-reduces, broadcasts and
 * a barrier on values the test computes by hand, then writes what it saw to OUT/rank<R>.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tensor, getNumThreads } from '../../../src/index';
import { ProcessGroup } from '../../../src/dist';
import { rankValues, BROADCAST_ROOT } from './collectives-values';
import { launchedEnv, runWorker, writeRankResult } from './setup';

async function main(): Promise<void> {
  const out = process.argv[2];
  const env = launchedEnv('collectives-worker');
  const group = await ProcessGroup.fromEnv(env, { timeoutMs: 60_000 });
  const v = rankValues(env.rank);
  const result: Record<string, unknown> = { rank: env.rank, worldSize: group.worldSize, threads: getNumThreads(), env };

  for (const op of ['sum', 'max', 'min', 'product'] as const) {
    const t = tensor(v.floats, { dtype: 'float64' });
    await group.allReduce(t, op);
    result[op] = t.toArray();
    t.dispose();
  }
  const ints = tensor(v.ints, { dtype: 'int64' });
  await group.allReduce(ints, 'sum');
  result.intSum = ints.toArray();

  const b = tensor(v.floats, { dtype: 'float64' });
  await group.broadcast(b, BROADCAST_ROOT);
  result.broadcast = b.toArray();

  // The barrier orders a file the last rank writes before it against every rank reading after it.
  const marker = path.join(out, 'written-before-barrier');
  if (env.rank === env.worldSize - 1) fs.writeFileSync(marker, 'x');
  await group.barrier();
  result.markerSeenAfterBarrier = fs.existsSync(marker);

  // Syncing nothing is a no-op; ranks syncing different numbers of tensors all learn it.
  await group.syncFromRank0([]);
  const own = Array.from({ length: env.rank + 1 }, () => tensor([1, 2], { dtype: 'float64' }));
  result.mismatch = await group.syncFromRank0(own).then(() => 'synced', (e: Error) => `${e.name}: ${e.message}`);
  group.destroy();
  // Misuse rejects like a failed collective instead of throwing where the call is made.
  const late = group.barrier();
  result.afterDestroy = await late.then(() => 'resolved', (e: Error) => e.message);
  writeRankResult(out, env.rank, result);
}

runWorker(main);
