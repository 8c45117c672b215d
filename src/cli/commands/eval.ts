import { Command, parseFlags } from '../command';
import { InputError } from '../../errors';
import { evaluate } from '../../train/evaluate-run';
import { SplitName } from '../../data/dataset';
import { COMPUTE_FLAGS, COMPUTE_FLAGS_USAGE, computeOptionsOf } from '../train-flags';

const usage = `usage: adafilter eval RUN_DIR [--data D] [--split test|val|train] [--precision P] [--device D] [--json]
  Scores the run's best weights on a split of its own data (default: test, the same split as
  result.json), or of another dataset D whose classes are the run's. Prints accuracy, loss,
  per-class accuracy and, for AdaFilter runs, the fraction of fine-tuned filters.
  The precision defaults to the run's own (fp16 runs: fp32 on the CPU).
${COMPUTE_FLAGS_USAGE}`;

export const evalCommand: Command = {
  name: 'eval',
  summary: "score a trained run on its test split or on another dataset",
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { data: { type: 'string' }, split: { type: 'string' }, json: { type: 'boolean' }, ...COMPUTE_FLAGS }, 'eval');
    if (positionals.length !== 1) throw new InputError('eval: expected one RUN_DIR');
    const r = await evaluate(positionals[0], { data: values.data as string | undefined, split: values.split as SplitName | undefined, ...computeOptionsOf(values) });
    if (values.json) { process.stdout.write(JSON.stringify(r, null, 2) + '\n'); return 0; }
    const lines = [`${r.data} ${r.split}: accuracy ${(100 * r.acc).toFixed(2)}% loss ${r.loss.toFixed(4)} (${r.examples} images)`];
    for (const [c, a] of Object.entries(r.perClass)) lines.push(`  ${c.padEnd(24)} ${(100 * a).toFixed(1)}%`);
    if (r.gates) {
      lines.push(`fine-tuned filters: ${(100 * r.gates.fraction).toFixed(1)}% overall`);
      for (const l of r.gates.layers) lines.push(`  ${l.name.padEnd(28)} ${(100 * l.fraction).toFixed(1)}% (±${(100 * l.exampleStd).toFixed(1)} across images)`);
    }
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  },
};
