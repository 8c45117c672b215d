import { Command, intFlag, parseFlags } from '../command';
import { InputError } from '../../errors';
import { predict } from '../../train/predict';
import { COMPUTE_FLAGS, COMPUTE_FLAGS_USAGE, computeOptionsOf } from '../train-flags';

const usage = `usage: adafilter predict RUN_DIR IMAGE... [--top K] [--no-fold-bn] [--precision P] [--device D] [--json]
  Classifies image files (PNG, JPEG, WebP, GIF, BMP, TIFF) with the run's best weights and prints
  the top K classes (default 5) with their probabilities.
  --no-fold-bn   run each batch norm on its own; by default it is folded into the convolution
                 before it (probabilities within 1e-5 relative of the unfolded model, not bit for bit)
${COMPUTE_FLAGS_USAGE}`;

export const predictCommand: Command = {
  name: 'predict',
  summary: 'classify image files with a trained run (top-k with class names)',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { top: { type: 'string' }, json: { type: 'boolean' }, 'no-fold-bn': { type: 'boolean' }, ...COMPUTE_FLAGS }, 'predict');
    if (positionals.length < 2) throw new InputError('predict: expected RUN_DIR and at least one IMAGE');
    const preds = await predict(positionals[0], positionals.slice(1), {
      topk: intFlag(values.top as string | undefined, 'top', 5), foldBn: !values['no-fold-bn'], ...computeOptionsOf(values),
    });
    if (values.json) { process.stdout.write(JSON.stringify(preds, null, 2) + '\n'); return 0; }
    for (const p of preds) {
      process.stdout.write(`${p.file}\n`);
      for (const t of p.top) process.stdout.write(`  ${(100 * t.probability).toFixed(1).padStart(5)}%  ${t.class}\n`);
    }
    return 0;
  },
};
