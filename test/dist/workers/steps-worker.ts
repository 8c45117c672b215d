/**
 * A worker of test/dist/failures.test.ts: all-reduces a tensor step after step; after step 1, rank
 * 1 kills itself (MODE kill) or stops itself (MODE stop). Rank 0's error goes to OUT/rank0.error.
 * argv: OUT MODE TIMEOUT_MS
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { full } from '../../../src/index';
import { ProcessGroup } from '../../../src/dist';
import { launchedEnv, runWorker } from './setup';

const STEPS = 1000;

async function main(): Promise<void> {
  const [out, mode, timeoutMs] = [process.argv[2], process.argv[3], Number(process.argv[4])];
  const env = launchedEnv('steps-worker');
  // The launcher's SIGTERM would end this process before its collective fails by itself; the
  // test wants to see that failure, so the signal is only noted (SIGKILL still ends it).
  process.on('SIGTERM', () => process.stderr.write(`rank ${env.rank}: SIGTERM (ignored by the test worker)\n`));
  const group = await ProcessGroup.fromEnv(env, { timeoutMs });
  for (let step = 1; step <= STEPS; step++) {
    const t = full([256], env.rank + 1, { dtype: 'float64' });
    try {
      await group.allReduce(t);
    } catch (e) {
      if (env.rank === 0) fs.writeFileSync(path.join(out, 'rank0.error'), `${(e as Error).name}: ${(e as Error).message}`);
      throw e;
    }
    t.dispose();
    fs.writeFileSync(path.join(out, `rank${env.rank}.step`), String(step));
    if (env.rank === 1 && step === 1) process.kill(process.pid, mode === 'kill' ? 'SIGKILL' : 'SIGSTOP');
  }
  group.destroy();
}

runWorker(main);
