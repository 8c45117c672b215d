/**
 * How every training command runs its job: a progress display that can switch to the next run
 * (compare, demo), Ctrl-C turned into a clean stop at the next step (checkpoint saved, exit 130),
 * and the display always closed — on success, on bad input, on interruption.
 */
import { Interrupted } from '../train/trainer';
import type { TrainEvent } from '../train/options';
import { progressReporter } from './progress';

export class Progress {
  #reporter = progressReporter();
  readonly onEvent = (e: TrainEvent): void => this.#reporter.onEvent(e);

  /** A new display for the next run of a series, its lines prefixed with `label`. */
  nextRun(label: string): void {
    this.#reporter.stop();
    this.#reporter = progressReporter({ label });
  }

  stop(): void {
    this.#reporter.stop();
  }
}

/** Runs `fn` with SIGINT turned into an abort (saved checkpoint, clean stop); a second Ctrl-C kills. */
export async function withSigint<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onSigint = () => {
    process.stderr.write('\nstopping after this step (checkpoint will be saved; Ctrl-C again to kill)\n');
    ac.abort();
    process.removeListener('SIGINT', onSigint);
  };
  process.on('SIGINT', onSigint);
  try {
    return await fn(ac.signal);
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

/** The job's exit code: 0 when it finishes, 130 when Ctrl-C stopped it; other errors propagate. */
export async function interruptible(job: (signal: AbortSignal, progress: Progress) => Promise<void>): Promise<number> {
  const progress = new Progress();
  try {
    await withSigint((signal) => job(signal, progress));
    return 0;
  } catch (e) {
    if (e instanceof Interrupted) return 130;
    throw e;
  } finally {
    progress.stop();
  }
}
