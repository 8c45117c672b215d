/** `evaluate`: a run's best weights scored on a split of its own data or of another dataset with the same classes. */
import { openDataset } from '../data/registry';
import { SplitName } from '../data/dataset';
import { createLoader } from '../data/loader';
import { InputError } from '../errors';
import { setNumThreads } from '../engine/runtime';
import { evaluateModel, Evaluation } from './evaluate';
import { loadRun } from './load-run';
import { resolveCompute } from './options';
import type { Precision } from '../engine/precision';

export interface EvaluateOptions {
  /** Another dataset; its classes must be the run's (by name). Default: the run's own data and splits. */
  data?: string;
  split?: SplitName;
  threads?: number;
  /** Default: the run's own precision where it can run on the device (fp16 runs evaluate in fp32 on the CPU). */
  precision?: Precision;
  /** Default cpu; see TrainOptions.device. */
  device?: string;
}

export async function evaluate(runDir: string, o: EvaluateOptions = {}): Promise<Evaluation & { split: SplitName; data: string }> {
  const split = o.split ?? 'test';
  if (!['train', 'val', 'test'].includes(split)) throw new InputError(`split: expected train, val or test, got '${split}'`);
  const compute = resolveCompute({ device: o.device, precision: o.precision ?? 'fp32' });
  const run = loadRun(runDir);
  try {
    const c = run.config;
    if (o.precision === undefined && c.precision && !(c.precision === 'fp16' && compute.device === 'cpu')) compute.precision = c.precision;
    run.model.to(compute.device);
    if (o.threads) setNumThreads(o.threads);
    const data = o.data ?? c.data;
    // The run's own splits are re-derived from its seed exactly as in training.
    const ds = await openDataset(data, o.data
      ? { seed: c.seed, classes: c.classes, val: c.valFraction, test: c.testFraction }
      : { seed: c.seed, shots: c.shots ?? undefined, val: c.valFraction, test: c.testFraction });
    if (JSON.stringify(ds.classes) !== JSON.stringify(c.classes)) {
      throw new InputError(`${data}: its classes are not the run's (${c.classes.length} classes, e.g. ${c.classes.slice(0, 3).join(', ')})`);
    }
    const loader = await createLoader(ds, { split, batch: 100, transform: run.transform });
    try {
      return { ...(await evaluateModel(run.model, loader, { gates: true, ...compute })), split, data };
    } finally {
      await loader.close();
    }
  } finally {
    run.model.dispose();
  }
}
