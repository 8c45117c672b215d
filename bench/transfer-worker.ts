/**
 * A child process of the transfer benchmark: takes one job at a time over IPC and runs it with
 * compare(). Separate processes rather than more libtorch threads: on 2 shared cores, one thread
 * per process wastes no time spinning in OpenMP barriers.
 */
import { runJob, Job } from './transfer';

process.on('message', (m: { job: Job }) => {
  runJob(m.job).then(
    () => process.send!({ id: m.job.id, ok: true }),
    (e: unknown) => process.send!({ id: m.job.id, ok: false, error: e instanceof Error ? e.message : String(e) }),
  );
});
process.on('disconnect', () => process.exit(0));
