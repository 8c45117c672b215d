import { Command, intFlag, parseFlags } from '../command';
import { InputError } from '../../errors';
import { compare, formatComparison } from '../../train/compare';
import { getMethod, methodNames } from '../../methods/registry';
import { TRAIN_FLAGS, TRAIN_FLAGS_USAGE, distJobOf, foldsOf, trainOptionsOf } from '../train-flags';
import { trialLabel } from '../search-lines';
import { leaveJob, writesOutputs } from '../../train/data-parallel';
import { relaunch } from '../../dist/relaunch';
import { interruptible } from '../interruptible';
import { autoCompare } from '../../train/search';

const usage = `usage: adafilter compare --data D --methods a,b,c [--seeds N] [options]
  Trains every method with every seed 0..N-1 (default 3) under identical data, splits, few-shot
  samples, augmentation and budget, then prints mean ± std test accuracy and the error change
  against finetune. Runs go to --out (default runs/compare-D)/METHOD-sSEED with compare.json
  beside them; finished runs are reused, so rerunning after a stop continues. --auto first searches
  each method's learning rates and budget with the same 6 trials each on seed 0's validation data
  (METHOD-s0/trials/, METHOD-s0/search.json); every seed then runs at the chosen settings.
  --methods          comma-separated: ${methodNames().join(', ')}
${TRAIN_FLAGS_USAGE}
  (--opt applies to every method that has the option; use it with one method, or per method as --opt METHOD.KEY=VALUE)`;

export const compareCommand: Command = {
  name: 'compare',
  summary: 'several methods × seeds on the same data; table of accuracy and error change vs finetune',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { ...TRAIN_FLAGS, methods: { type: 'string' }, seeds: { type: 'string' } }, 'compare');
    if (positionals.length) throw new InputError(`compare: unexpected argument '${positionals[0]}'`);
    if (!values.methods) throw new InputError('compare: --methods is required (e.g. --methods finetune,adafilter)');
    const methods = (values.methods as string).split(',').map((m) => m.trim()).filter(Boolean);
    const { methodOptions, ...opts } = trainOptionsOf(values, 'compare');
    const folds = foldsOf(values);
    // --opt METHOD.KEY=VALUE targets one method; a bare KEY=VALUE goes to every method.
    const byMethod: Record<string, Record<string, unknown>> = Object.fromEntries(methods.map((m) => [m, {}]));
    for (const [k, v] of Object.entries(methodOptions ?? {})) {
      const dot = k.indexOf('.');
      if (dot > 0 && methods.includes(k.slice(0, dot))) byMethod[k.slice(0, dot)][k.slice(dot + 1)] = v;
      else {
        const takers = methods.filter((m) => k in getMethod(m).defaults);
        if (!takers.length) throw new InputError(`--opt ${k}: none of ${methods.join(', ')} has this option`);
        for (const m of takers) byMethod[m][k] = v;
      }
    }
    const job = distJobOf(values);
    if (job.launcher) return relaunch(job.launcher, 'compare', argv);
    return interruptible(async (signal, progress) => {
      const co = {
        ...opts, dist: job.dist, methods, seeds: intFlag(values.seeds as string | undefined, 'seeds', 3), methodOptionsByMethod: byMethod, signal,
        onRun: (method: string, seed: number, i: number, total: number) => progress.nextRun(`[${i + 1}/${total} ${method} s${seed}]`),
        onEvent: progress.onEvent,
      };
      let current = '';
      const c = values.auto
        ? await autoCompare(co, { folds, onMethod: (m) => (current = m), onTrial: (k, n, t) => progress.nextRun(`[${current} ${k < n ? `trial ${k + 1}/${n}` : 'final'} ${trialLabel(t)}]`) })
        : await compare(co);
      progress.stop();
      await leaveJob();
      if (!writesOutputs()) return; // rank 0 reports for the job
      if (values.json) process.stdout.write(JSON.stringify(c, null, 2) + '\n');
      else process.stdout.write(formatComparison(c) + '\n');
    });
  },
};
