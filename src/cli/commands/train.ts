import { Command, parseFlags } from '../command';
import { InputError } from '../../errors';
import { fineTune } from '../../train/trainer';
import { methodNames } from '../../methods/registry';
import { interruptible } from '../interruptible';
import { autoTrain } from '../../train/search';
import { TRAIN_FLAGS, TRAIN_FLAGS_USAGE, distJobOf, foldsOf, trainOptionsOf } from '../train-flags';
import { trialLabel, searchLine } from '../search-lines';
import { resolveOptions } from '../../train/options';
import { leaveJob, writesOutputs } from '../../train/data-parallel';
import { relaunch } from '../../dist/relaunch';

const usage = `usage: adafilter train --data D [--method M] [options] [--resume]
  Fine-tunes a backbone on D with method M (default adafilter) and writes a run folder (--out,
  default runs/M-D-sSEED): run.json, log.jsonl (one line per validation), checkpoint.safetensors (at
  every validation; Ctrl-C saves one and stops), model.safetensors (best validation weights), result.json
  (test split, read once at the end). --resume continues a stopped run exactly. --auto first tries
  3 learning rates (lr / gate-lr pairs for gated methods) at the run's budget and at twice it on
  validation data (cross-validated on a folder with about one validation image per class), in
  OUT/trials/, records the choice in OUT/search.json and makes the best one the run.
  --method M         ${methodNames().join(', ')}
  --seed N           splits, sampling, order, augmentation and initialisation (0)
${TRAIN_FLAGS_USAGE}`;

export const trainCommand: Command = {
  name: 'train',
  summary: 'fine-tune a backbone on a dataset with one method; writes a run folder',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { ...TRAIN_FLAGS, method: { type: 'string' }, seed: { type: 'string' }, resume: { type: 'boolean' } }, 'train');
    if (positionals.length) throw new InputError(`train: unexpected argument '${positionals[0]}'`);
    const opts = trainOptionsOf(values, 'train');
    const folds = foldsOf(values);
    const method = values.method as string | undefined;
    if (opts.methodOptions?.featuresFrom !== undefined && method !== 'linear-probe') {
      throw new InputError(`--features-from: only linear-probe cuts the backbone (method ${method ?? 'adafilter'}); add --method linear-probe`);
    }
    const seed = values.seed === undefined ? undefined : Number(values.seed);
    if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0)) throw new InputError(`--seed: expected an integer >= 0, got '${values.seed}'`);
    const job = distJobOf(values);
    if (job.launcher) {
      resolveOptions({ ...opts, method, seed }); // bad values: one line here, not one per worker
      return relaunch(job.launcher, 'train', argv);
    }
    return interruptible(async (signal, progress) => {
      const run = { ...opts, method, seed, resume: Boolean(values.resume), signal, onEvent: progress.onEvent, dist: job.dist };
      const searched = values.auto
        ? await autoTrain(run, { folds, onTrial: (k, n, t) => progress.nextRun(`[${k < n ? `trial ${k + 1}/${n}` : 'final:'} ${trialLabel(t)}]`) })
        : null;
      const result = searched ? searched.result : await fineTune(run);
      await leaveJob(); // after the job's last collective (on failure the process ends without it)
      if (!writesOutputs()) return; // rank 0 reports for the job
      if (searched && !values.json) process.stdout.write(searchLine(searched.search) + '\n');
      if (values.json) process.stdout.write(JSON.stringify(searched ? { ...result, search: searched.search } : result, null, 2) + '\n');
      else process.stdout.write(`${result.method}: test accuracy ${(100 * result.test.acc).toFixed(2)}% (best epoch ${result.bestEpoch}, val ${(100 * result.val.acc).toFixed(2)}%) → ${result.dir}\n`);
    });
  },
};
