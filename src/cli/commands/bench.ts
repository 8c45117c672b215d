import { Command, intFlag, parseFlags } from '../command';
import { InputError } from '../../errors';
import { runThroughput } from '../../../bench/throughput';

const usage = `usage: adafilter bench throughput [--arch A] [--batch N] [--threads N] [--steps N] [--warmup N]
                                  [--rounds N] [--channels-last] [--no-peer] [--json]
  Times forward passes and SGD training steps here and in PyTorch (Debian python3-torch),
  alternately in one run; prints images/s for both and the ratio adafilter / pytorch.`;

async function throughput(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    arch: { type: 'string' }, batch: { type: 'string' }, threads: { type: 'string' },
    steps: { type: 'string' }, warmup: { type: 'string' }, rounds: { type: 'string' },
    'channels-last': { type: 'boolean' }, 'no-peer': { type: 'boolean' }, json: { type: 'boolean' },
  }, 'bench throughput');
  const result = await runThroughput({
    arch: (values.arch as string | undefined) ?? 'resnet20',
    batch: intFlag(values.batch as string | undefined, 'batch', 32),
    threads: intFlag(values.threads as string | undefined, 'threads', 2),
    steps: intFlag(values.steps as string | undefined, 'steps', 5),
    warmup: intFlag(values.warmup as string | undefined, 'warmup', 2, 0),
    rounds: intFlag(values.rounds as string | undefined, 'rounds', 3),
    channelsLast: Boolean(values['channels-last']),
    peer: !values['no-peer'],
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } else {
    const a = result.adafilter as any, p = result.pytorch as any;
    const line = (name: string, s: any) =>
      `${name.padEnd(10)} forward ${s.forward_img_s.toFixed(1).padStart(8)} img/s  train ${s.train_img_s.toFixed(1).padStart(8)} img/s  (${s.train_gflop_s.toFixed(1)} GFLOP/s, peak RSS ${s.peak_rss_mb.toFixed(0)} MB)`;
    process.stdout.write(`${result.arch}, batch ${result.batch}, ${result.threads} threads\n${line('adafilter', a)}\n`);
    if (p) process.stdout.write(`${line('pytorch', p)}\nratio      forward ${(result.forward_ratio as number).toFixed(2)}  train ${(result.train_ratio as number).toFixed(2)}\n`);
  }
  return 0;
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'benchmarks: throughput (adafilter vs PyTorch)',
  usage,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === 'throughput') return throughput(rest);
    throw new InputError(`unknown benchmark '${sub ?? ''}' (available: throughput)`);
  },
};
