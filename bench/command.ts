/**
 * `adafilter bench …`. It lives with the benchmarks, not in src/: the library never imports
 * bench/, and bin/adafilter.js adds this command to the CLI's table.
 */
import { Command, intFlag, parseFlags } from '../src/cli/command';
import { InputError } from '../src/errors';
import { getMethod } from '../src/methods/registry';
import { runThroughput } from './throughput';
import { runDistThroughput } from './throughput-dist';
import type { Precision } from '../src/engine/precision';
import { runDataBench } from './data';
import { compareMethodCost } from './methods';
import { Profile, PROFILES, probeProfile } from './transfer-suite';
import { publishResults, runTransfer } from './transfer';
import { headline } from './transfer-report';

const usage = `usage: adafilter bench throughput [--arch A] [--batch N] [--threads N] [--steps N] [--warmup N]
                                  [--rounds N] [--channels-last] [--precision fp32|bf16] [--device D] [--no-peer] [--method M] [--json]
                                  [--nproc-per-node N]
  Times forward passes and SGD training steps here and in PyTorch (Debian python3-torch),
  alternately in one run; prints images/s for both and the ratio adafilter / pytorch.
  --nproc-per-node N: our DDP training instead, N processes x --threads each (Gloo on 127.0.0.1,
  --batch the global batch, batch/N per rank), against one process with N x --threads threads on
  the same global batch, alternately; images/s of both, scaling efficiency, gradient buckets and
  all-reduce bytes per step.
  --precision bf16: both sides under bf16 autocast (fp32 weights and SGD step); --device cuda[:N]:
  both sides on that GPU (the addon built against a CUDA libtorch, README), each step synchronised.
  With --method M (other than finetune): M's training and forward cost against finetune's on the
  same backbone, alternately in one run (the PyTorch peer implements finetune only).

usage: adafilter bench data --data NAME [--batch N] [--size PX] [--workers N] [--seconds S]
                            [--arch A] [--threads N] [--json]
  Images/s the input pipeline delivers with augmentation, next to the images/s that training
  the backbone (default resnet20) consumes at that input size, measured one after the other.

usage: adafilter bench transfer --profile ${Object.keys(PROFILES).join('|')} [--out DIR] [--jobs N] [--threads N]
                                [--report-only] [--publish DOCS_DIR] [--json] [--backbones B1,B2,...]
                                [--cells ID1,ID2,...]
  Issue #7: every method on targets the shipped backbone never saw (bench/transfer-suite.ts),
  hyper-parameters searched on validation data, 3 seeds, paired bootstrap interval for
  AdaFilter − finetune. Writes DIR/transfer-PROFILE.json and DIR/results-PROFILE.md (default DIR
  bench-results/transfer-PROFILE); finished runs are reused, so running it again continues.
  'variants' (AdaFilter's tau, gated layers, ...) reuses the full profile's runs: give it the same --out.
  'budget': finetune vs AdaFilter at 3x the epochs; 'shots100': the 100-shot cells (both at the
  lr the full profile's search chose). 'fidelity-search' chooses AdaFilter's training defaults on
  the dev task; 'fidelity' (issue 13) benchmarks them against every baseline. 'probe' (issue 15):
  linear-probe feature quality of each backbone in --backbones (shipped names or .safetensors
  files; default doodles-resnet20,default) on fidelity's 12 resnet20 cells.
  --jobs N           training processes at once (default 2), each with --threads libtorch threads (default 1)
  --report-only      train nothing: rebuild the summary from the runs that exist
  --publish DOCS     also write DOCS/results/transfer-PROFILE.json and regenerate DOCS/results.md
  --cells IDS        --profile defaults: only these cells, in this order (a measurement that spans
                     sittings: --publish keeps the cells published before that this run lacks, when
                     they were measured on the same backbone weights)`;

async function data(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    data: { type: 'string' }, batch: { type: 'string' }, size: { type: 'string' }, workers: { type: 'string' },
    seconds: { type: 'string' }, arch: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean' },
  }, 'bench data');
  if (!values.data) throw new InputError('bench data: --data NAME is required (see adafilter datasets list)');
  const batch = intFlag(values.batch as string | undefined, 'batch', 32);
  const size = intFlag(values.size as string | undefined, 'size', 32);
  const threads = intFlag(values.threads as string | undefined, 'threads', 2);
  const pipeline = await runDataBench({
    data: values.data as string, batch, imageSize: size,
    workers: intFlag(values.workers as string | undefined, 'workers', 2),
    seconds: intFlag(values.seconds as string | undefined, 'seconds', 5),
  });
  const training = await runThroughput({
    arch: (values.arch as string | undefined) ?? 'resnet20', batch, threads, steps: 3, warmup: 1, rounds: 2,
    channelsLast: false, peer: false, inputSize: size,
  });
  const trainImgS = (training.adafilter as { train_img_s: number }).train_img_s;
  const result = { ...pipeline, arch: training.arch, train_img_s: trainImgS, pipeline_to_training: pipeline.images_per_s / trainImgS, machine: training.machine };
  if (values.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else process.stdout.write(`${result.data}: pipeline ${pipeline.images_per_s.toFixed(0)} img/s with augmentation (${pipeline.workers} workers), ` +
    `training ${result.arch} consumes ${trainImgS.toFixed(0)} img/s: ${result.pipeline_to_training.toFixed(1)}x\n`);
  return 0;
}

async function throughput(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    arch: { type: 'string' }, batch: { type: 'string' }, threads: { type: 'string' },
    steps: { type: 'string' }, warmup: { type: 'string' }, rounds: { type: 'string' },
    'channels-last': { type: 'boolean' }, 'no-peer': { type: 'boolean' }, json: { type: 'boolean' },
    method: { type: 'string' }, precision: { type: 'string' }, device: { type: 'string' }, 'nproc-per-node': { type: 'string' },
  }, 'bench throughput');
  const method = (values.method as string | undefined) ?? 'finetune';
  getMethod(method);
  if (values['nproc-per-node'] !== undefined) return dataParallelThroughput(values, method);
  if (method !== 'finetune') {
    const r = compareMethodCost({
      method, arch: (values.arch as string | undefined) ?? 'resnet20',
      batch: intFlag(values.batch as string | undefined, 'batch', 32),
      threads: intFlag(values.threads as string | undefined, 'threads', 2),
      steps: intFlag(values.steps as string | undefined, 'steps', 3),
      rounds: intFlag(values.rounds as string | undefined, 'rounds', 5),
      warmup: intFlag(values.warmup as string | undefined, 'warmup', 2, 0),
    });
    if (values.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else process.stdout.write(`${method} on ${r.method.arch}, batch ${r.method.batch}: train ${r.method.train_img_s.toFixed(1)} img/s ` +
      `(finetune ${r.baseline.train_img_s.toFixed(1)}), step cost ${r.train_cost_ratio.toFixed(2)}x finetune; ` +
      `forward cost ${r.forward_cost_ratio.toFixed(2)}x\n`);
    return 0;
  }
  const result = await runThroughput({
    arch: (values.arch as string | undefined) ?? 'resnet20',
    batch: intFlag(values.batch as string | undefined, 'batch', 32),
    threads: intFlag(values.threads as string | undefined, 'threads', 2),
    steps: intFlag(values.steps as string | undefined, 'steps', 3),
    warmup: intFlag(values.warmup as string | undefined, 'warmup', 2, 0),
    rounds: intFlag(values.rounds as string | undefined, 'rounds', 5),
    channelsLast: Boolean(values['channels-last']),
    peer: !values['no-peer'],
    precision: values.precision as Precision | undefined,
    device: values.device as string | undefined,
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } else {
    const a = result.adafilter as any, p = result.pytorch as any;
    const line = (name: string, s: any) =>
      `${name.padEnd(10)} forward ${s.forward_img_s.toFixed(1).padStart(8)} img/s  train ${s.train_img_s.toFixed(1).padStart(8)} img/s  (${s.train_gflop_s.toFixed(1)} GFLOP/s, peak RSS ${s.peak_rss_mb.toFixed(0)} MB)`;
    process.stdout.write(`${result.arch}, batch ${result.batch}, ${result.threads} threads, ${result.precision} on ${result.device}\n${line('adafilter', a)}\n`);
    if (p) process.stdout.write(`${line('pytorch', p)}\nratio      forward ${(result.forward_ratio as number).toFixed(2)}  train ${(result.train_ratio as number).toFixed(2)}\n`);
  }
  return 0;
}

async function dataParallelThroughput(values: Record<string, unknown>, method: string): Promise<number> {
  for (const [flag, given] of [['--method', method !== 'finetune'], ['--precision', values.precision !== undefined && values.precision !== 'fp32'],
    ['--device', values.device !== undefined && values.device !== 'cpu'], ['--channels-last', Boolean(values['channels-last'])]] as const) {
    if (given) throw new InputError(`bench throughput --nproc-per-node: ${flag} is not supported (finetune, fp32, cpu, contiguous: what the data-parallel side runs)`);
  }
  const r = await runDistThroughput({
    arch: (values.arch as string | undefined) ?? 'resnet20',
    batch: intFlag(values.batch as string | undefined, 'batch', 32),
    nproc: intFlag(values['nproc-per-node'] as string | undefined, 'nproc-per-node', 2),
    threads: intFlag(values.threads as string | undefined, 'threads', 1),
    steps: intFlag(values.steps as string | undefined, 'steps', 3),
    warmup: intFlag(values.warmup as string | undefined, 'warmup', 2, 0),
    rounds: intFlag(values.rounds as string | undefined, 'rounds', 5),
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    return 0;
  }
  const mb = (b: number) => (b / 2 ** 20).toFixed(2);
  process.stdout.write(`${r.arch}, global batch ${r.global_batch}, fp32 on cpu\n` +
    `${`1 process x ${r.one_process.threads} threads`.padEnd(26)} train ${r.one_process.train_img_s.toFixed(1).padStart(8)} img/s\n` +
    `${`${r.nproc_per_node} processes x ${r.threads_per_process} threads`.padEnd(26)} train ${r.data_parallel.train_img_s.toFixed(1).padStart(8)} img/s (batch ${r.rank_batch} per rank)\n` +
    `scaling efficiency ${r.scaling_efficiency.toFixed(2)}; ${r.gradients.bucket_count} gradient buckets (${r.gradients.bucket_bytes.map(mb).join(', ')} MB), ` +
    `${mb(r.allreduce.bytes_per_step)} MB all-reduced per step\n`);
  return 0;
}

async function transfer(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    profile: { type: 'string' }, out: { type: 'string' }, jobs: { type: 'string' }, threads: { type: 'string' },
    'report-only': { type: 'boolean' }, publish: { type: 'string' }, json: { type: 'boolean' }, backbones: { type: 'string' },
    cells: { type: 'string' },
  }, 'bench transfer');
  if (positionals.length) throw new InputError(`bench transfer: unexpected argument '${positionals[0]}'`);
  const name = values.profile as string | undefined;
  if (!name || !PROFILES[name]) throw new InputError(`bench transfer: --profile must be one of ${Object.keys(PROFILES).join(', ')}${name ? `, got '${name}'` : ''}`);
  const backbones = values.backbones as string | undefined;
  if (backbones !== undefined && name !== 'probe') throw new InputError(`bench transfer: --backbones is for --profile probe, not '${name}'`);
  const list = backbones?.split(',').map((b) => b.trim()) ?? [];
  if (backbones !== undefined && list.some((b) => b === '')) throw new InputError(`bench transfer: --backbones wants a comma-separated list of backbones, got '${backbones}'`);
  const cells = values.cells as string | undefined;
  const summary = await runTransfer({
    profile: backbones !== undefined ? probeProfile(list) : cells !== undefined ? onlyCells(PROFILES[name], cells) : PROFILES[name], out: (values.out as string | undefined) ?? `bench-results/transfer-${name}`,
    jobs: intFlag(values.jobs as string | undefined, 'jobs', 2), threads: intFlag(values.threads as string | undefined, 'threads', 1),
    train: !values['report-only'], command: ['node bin/adafilter.js bench transfer', ...argv].join(' '),
  });
  if (values.publish) process.stderr.write(`wrote ${publishResults(summary, values.publish as string, (l) => process.stderr.write(l + '\n'))}\n`);
  if (values.json) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  else process.stdout.write(headline(summary) + '\n');
  return 0;
}

/** The defaults profile measuring only the cells named in `list` (comma-separated), in that order. */
export function onlyCells(p: Profile, list: string): Profile {
  if (!p.defaults) throw new InputError(`bench transfer: --cells is for --profile defaults, not '${p.name}'`);
  const ids = list.split(',').map((c) => c.trim());
  const known = p.defaults.cells.map((c) => c.id);
  const unknown = ids.find((c) => !known.includes(c));
  if (unknown !== undefined) throw new InputError(`bench transfer: --cells: '${unknown}' is not a cell of profile ${p.name}; its cells: ${known.join(', ')}`);
  if (new Set(ids).size !== ids.length) throw new InputError(`bench transfer: --cells names a cell twice: '${list}'`);
  return { ...p, defaults: { ...p.defaults, only: ids } };
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'benchmarks: throughput (adafilter vs PyTorch), data (input pipeline), transfer (accuracy of the methods, issue #7)',
  usage,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === 'throughput') return throughput(rest);
    if (sub === 'data') return data(rest);
    if (sub === 'transfer') return transfer(rest);
    throw new InputError(`unknown benchmark '${sub ?? ''}' (available: throughput, data, transfer)`);
  },
};
