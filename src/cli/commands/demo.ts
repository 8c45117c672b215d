import * as path from 'node:path';
import { Command, intFlag, parseFlags } from '../command';
import { InputError } from '../../errors';
import { compare, formatComparison } from '../../train/compare';
import { writeReport } from '../../report';
import { interruptible } from '../interruptible';
import { PACKAGE_ROOT } from '../../train/backbones';
import { readBenchmarkHeadline } from '../../train/standing';

/**
 * The main job on the embedded default: the shipped backbone (pretrained on Quick Draw classes
 * 0-244 and letters of 137 scripts) adapted to ten doodle classes it never saw, from 20 drawings each, by standard
 * fine-tuning and by AdaFilter under the same budget; then the comparison table and a report.
 * The budget is the trainer's default rule (src/train/budget.ts: 504 steps here), the one a user's
 * first `train` gets. 2 seeds, not 3: at that budget a seed of both methods costs about 2.5 minutes
 * on 2 cores (estimated from the `defaults` benchmark profile's per-step costs, 0.14 s finetune and
 * 0.32 s AdaFilter per batch-32 step on one thread; not timed on an idle machine), and the demo is to
 * finish in a few minutes; the benchmark line it prints is the evidence.
 */
export const DEMO = {
  data: 'quickdraw:300-309', shots: 20, batch: 32, seeds: 2, methods: ['finetune', 'adafilter'], out: 'runs/demo',
} as const;

const usage = `usage: adafilter demo [--out DIR] [--seeds N] [--steps N | --epochs N] [--threads N] [--json]
  Fine-tunes the shipped backbone (weights/default.md) on ${DEMO.data} (10 Quick Draw classes
  unseen in pretraining, ${DEMO.shots} training drawings per class) with ${DEMO.methods.join(' and ')}, ${DEMO.seeds} seeds,
  each for the default training length (train's rule: max(500 steps, 10 epochs); --steps or --epochs
  override it); prints the comparison table and writes DIR/report.html and report.md
  (default DIR ${DEMO.out}). Finished runs are reused: a second demo only redraws the report.`;

export const demoCommand: Command = {
  name: 'demo',
  summary: `the main job, no flags needed: finetune vs adafilter on unseen doodles, table and report`,
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, {
      json: { type: 'boolean' }, out: { type: 'string' }, seeds: { type: 'string' }, steps: { type: 'string' }, epochs: { type: 'string' }, threads: { type: 'string' },
    }, 'demo');
    if (positionals.length) throw new InputError(`demo: unexpected argument '${positionals[0]}'`);
    const out = path.resolve((values.out as string | undefined) ?? DEMO.out);
    const seeds = intFlag(values.seeds as string | undefined, 'seeds', DEMO.seeds);
    if (values.steps !== undefined && values.epochs !== undefined) throw new InputError('demo: give --steps or --epochs, not both');
    const steps = values.steps === undefined ? undefined : intFlag(values.steps as string, 'steps', 1);
    const epochs = values.epochs === undefined ? undefined : intFlag(values.epochs as string, 'epochs', 1);
    const budget = steps !== undefined ? `${steps} steps` : epochs !== undefined ? `${epochs} epochs` : 'the default training length';
    const threads = values.threads === undefined ? undefined : intFlag(values.threads as string, 'threads', 1);
    process.stderr.write(`adafilter demo: the shipped backbone on ${DEMO.data}, ${DEMO.shots} drawings per class; ${DEMO.methods.join(' vs ')}, ${seeds} seed(s), ${budget} → ${out}\n`);
    return interruptible(async (signal, progress) => {
      const c = await compare({
        backbone: 'default', data: DEMO.data, shots: DEMO.shots, steps, epochs, batch: DEMO.batch, seeds, methods: [...DEMO.methods],
        threads, out, signal,
        onRun: (method, seed, i, total) => progress.nextRun(`[${i + 1}/${total} ${method} s${seed}]`),
        onEvent: progress.onEvent,
      });
      progress.stop();
      const files = await writeReport([out], out);
      if (values.json) process.stdout.write(JSON.stringify({ ...c, report: files.html }, null, 2) + '\n');
      else process.stdout.write(`${formatComparison(c)}\n\nreport: ${files.html}\n        ${files.md}\n`);
      // A demo of 3 seeds on one target cannot say whether AdaFilter beats finetune; the benchmark can.
      const standing = readBenchmarkHeadline(PACKAGE_ROOT);
      if (standing && !values.json) process.stdout.write(`\n${standing}\n`);
    });
  },
};
