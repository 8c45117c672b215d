/**
 * What every worker process of the dist tests does around its own work: finds the job its launcher
 * started it in, writes what it saw as OUT/rank<R>.json (atomically, so the test never reads half
 * a file), and turns an error into one stderr line and exit code 1, which the launcher reports.
 */
import * as path from 'node:path';
import { DataParallel, workerEnv, WorkerEnv } from '../../../src/dist';
import { writeFileAtomic } from '../../../src/io/atomic';

/** This process's place in the job; `worker` names it in the error when no launcher started it. */
export function launchedEnv(worker: string): WorkerEnv {
  const env = workerEnv();
  if (!env) throw new Error(`${worker}: not started by a launcher`);
  return env;
}

/** Joins the job as a trainer does (DataParallel); `worker` names it in the error when it is alone. */
export async function joinDataParallel(worker: string, timeoutMs: number): Promise<DataParallel> {
  const dp = await DataParallel.join({ timeoutMs });
  if (!dp) throw new Error(`${worker}: not started as one of several workers`);
  return dp;
}

export function writeRankResult(out: string, rank: number, result: unknown): void {
  writeFileAtomic(path.join(out, `rank${rank}.json`), JSON.stringify(result));
}

export function runWorker(main: () => Promise<void>): void {
  main().catch((e) => {
    process.stderr.write(`${(e as Error).name}: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
