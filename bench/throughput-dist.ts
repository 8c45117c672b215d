/**
 * `bench throughput --nproc-per-node N`: our DDP training (N processes × T threads, Gloo on
 * 127.0.0.1, each rank batch/N of the global batch) against one process with N·T threads on the
 * same global batch, alternately in one run as bench/throughput.ts alternates its sides: each
 * round times the one-process side here, then launches the N workers (this file, run as a script),
 * which warm up and time their steps. Reported with the gradient buckets DDP formed and the bytes
 * each step all-reduces, which is what decides what several machines would gain.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { manualSeed, randn, randint } from '../src/engine/random';
import { setNumThreads } from '../src/engine/runtime';
import { tidy } from '../src/engine/scope';
import { Tensor } from '../src/engine/tensor';
import { InputError } from '../src/errors';
import { crossEntropy } from '../src/nn/functional';
import { Module } from '../src/nn/module';
import { buildModel, modelSpec } from '../src/models/registry';
import { SGD } from '../src/optim/sgd';
import { DataParallel } from '../src/dist/data-parallel';
import { launch } from '../src/dist/launch';
import type { GradientBucket } from '../src/dist/native';
import { machineInfo, median, peakRssMb } from './machine';
import { settle } from './throughput';

export interface DistThroughputOptions {
  arch: string;
  /** The global batch: each of the nproc ranks trains on batch / nproc of it. */
  batch: number;
  nproc: number;
  /** Intra-op threads of each rank; the one-process side has nproc × threads. */
  threads: number;
  steps: number;
  warmup: number;
  rounds: number;
}

/** What a worker is asked to do (argv[2], JSON). */
interface WorkerSpec {
  arch: string;
  batch: number;
  threads: number;
  steps: number;
  warmup: number;
  out: string;
}

/** What a worker writes to OUT/rank<R>.json. */
interface WorkerResult {
  rank: number;
  steps_ms: number[];
  buckets: GradientBucket[];
  peak_rss_mb: number;
}

/** PyTorch DDP's bucket limits, which the addon's Reducer uses (native/src/dist.cc). */
const BUCKET_CAP_MB = 25;
const FIRST_BUCKET_MB = 1;

/** The benchmark's model and its global batch, the same in every process (seeded). */
function setup(arch: string, batch: number): { model: Module; opt: SGD; x: Tensor; y: Tensor } {
  manualSeed(0);
  const model = buildModel(arch, 10);
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const size = modelSpec(arch).inputSize;
  const x = randn([batch, 3, size, size]), y = randint(0, 10, [batch]);
  model.train();
  return { model, opt, x, y };
}

/** One SGD step of the one-process side, timed, as bench/throughput.ts times its training steps. */
function timeSteps(s: ReturnType<typeof setup>, steps: number): number[] {
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = process.hrtime.bigint();
    tidy(() => {
      s.opt.zeroGrad();
      crossEntropy(s.model.forward(s.x), s.y).backward();
      s.opt.step();
    });
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return times;
}

/** A worker: warm-up and timed DDP steps on this rank's share of the global batch. */
async function worker(spec: WorkerSpec): Promise<void> {
  setNumThreads(spec.threads);
  const dp = await DataParallel.join({ timeoutMs: 300_000 });
  if (!dp) throw new Error('throughput-dist worker: not started by the launcher');
  const s = setup(spec.arch, spec.batch);
  const [x, y] = [dp.take(s.x), dp.take(s.y)];
  await dp.wrap(s.model);
  const step = (): void => tidy(() => {
    s.opt.zeroGrad();
    const loss = dp.forward(spec.batch, () => crossEntropy(s.model.forward(x), y), (l) => [l]);
    loss.backward(); // returns when every bucket's all-reduce is done: the step waits for the slowest rank
    s.opt.step();
  });
  for (let i = 0; i < spec.warmup; i++) step();
  await dp.barrier(); // the ranks start timing together
  const times: number[] = [];
  for (let i = 0; i < spec.steps; i++) {
    const t0 = process.hrtime.bigint();
    step();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  const result: WorkerResult = { rank: dp.rank, steps_ms: times.map((t) => t * 1e3), buckets: dp.buckets(), peak_rss_mb: peakRssMb() };
  dp.close();
  for (const t of [x, y, s.x, s.y]) t.dispose();
  s.opt.dispose();
  s.model.dispose();
  const file = path.join(spec.out, `rank${result.rank}.json`);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(result));
  fs.renameSync(`${file}.tmp`, file);
}

/** One launch of the N workers: their per-step times (ms) and what rank 0 saw of the buckets. */
async function dataParallelRound(o: DistThroughputOptions, steps: number): Promise<WorkerResult[]> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'adafilter-bench-dist-'));
  try {
    const spec: WorkerSpec = { arch: o.arch, batch: o.batch, threads: o.threads, steps, warmup: o.warmup, out };
    await launch({
      nprocPerNode: o.nproc, threadsPerWorker: o.threads, command: process.execPath, args: [__filename, JSON.stringify(spec)],
      log: (line) => process.stderr.write(`${line}\n`),
    });
    return Array.from({ length: o.nproc }, (_, r) => JSON.parse(fs.readFileSync(path.join(out, `rank${r}.json`), 'utf8')) as WorkerResult);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

export async function runDistThroughput(o: DistThroughputOptions) {
  if (!(Number.isInteger(o.nproc) && o.nproc >= 2)) throw new InputError(`bench throughput: --nproc-per-node must be an integer of at least 2, got ${o.nproc}`);
  if (o.batch % o.nproc !== 0) throw new InputError(`bench throughput: --batch ${o.batch} does not split evenly over ${o.nproc} processes: choose a multiple of ${o.nproc}`);
  modelSpec(o.arch); // unknown architectures fail before anything starts
  const oneThreads = o.nproc * o.threads;
  setNumThreads(oneThreads);
  const one = setup(o.arch, o.batch);
  const oneTimes: number[] = [];
  const rankTimes: number[][] = Array.from({ length: o.nproc }, () => []);
  let buckets: GradientBucket[] = [];
  let dpRss = 0;
  try {
    timeSteps(one, o.warmup);
    for (let r = 0; r < o.rounds; r++) {
      oneTimes.push(...timeSteps(one, o.steps));
      // OpenMP workers spin for a while after their last parallel region: let this side's go idle.
      await settle();
      const ranks = await dataParallelRound(o, o.steps);
      ranks.forEach((w, i) => rankTimes[i].push(...w.steps_ms.map((ms) => ms / 1e3)));
      buckets = ranks[0].buckets;
      dpRss = Math.max(dpRss, ...ranks.map((w) => w.peak_rss_mb));
      await settle();
    }
    const trainable = one.model.parameters().filter((p) => p.requiresGrad);
    const gradientBytes = trainable.reduce((s, p) => s + p.numel * 4, 0);
    // A step ends when the slowest rank's does; per step, the slowest rank's time.
    const dpTimes = rankTimes[0].map((_, i) => Math.max(...rankTimes.map((t) => t[i])));
    const oneMedian = median(oneTimes), dpMedian = median(dpTimes);
    const bucketBytes = buckets.reduce((s, b) => s + b.bytes, 0);
    return {
      arch: o.arch, method: 'finetune', precision: 'fp32', device: 'cpu', input_size: modelSpec(o.arch).inputSize,
      global_batch: o.batch, nproc_per_node: o.nproc, threads_per_process: o.threads, rank_batch: o.batch / o.nproc,
      backend: 'gloo', master_addr: '127.0.0.1', steps_timed: o.steps * o.rounds, rounds: o.rounds,
      one_process: {
        processes: 1, threads: oneThreads, train_img_s: o.batch / oneMedian, train_ms: oneMedian * 1e3,
        train_steps_ms: oneTimes.map((s) => +(s * 1e3).toFixed(2)), peak_rss_mb: peakRssMb(),
      },
      data_parallel: {
        processes: o.nproc, threads: o.threads, train_img_s: o.batch / dpMedian, train_ms: dpMedian * 1e3,
        train_steps_ms: dpTimes.map((s) => +(s * 1e3).toFixed(2)),
        rank_train_ms: rankTimes.map((t) => median(t) * 1e3), peak_rss_mb_per_rank: dpRss,
      },
      // DDP's images/s over one process's on the same cores (N·T threads): 1 is perfect scaling.
      scaling_efficiency: oneMedian / dpMedian,
      gradients: {
        parameters: trainable.length, bytes: gradientBytes,
        bucket_cap_mb: BUCKET_CAP_MB, first_bucket_mb: FIRST_BUCKET_MB,
        // The buckets after warmup + steps forward passes: from the second on, rebuilt in the order gradients became ready.
        buckets_after_steps: o.warmup + o.steps, bucket_count: buckets.length, bucket_bytes: buckets.map((b) => b.bytes), bucket_parameters: buckets.map((b) => b.parameters),
      },
      allreduce: {
        // Every bucket is all-reduced once per step: every gradient, float32.
        calls_per_step: buckets.length, bytes_per_step: bucketBytes,
        // As a ring all-reduce moves it: each rank sends (and receives) 2(N−1)/N of the buffer.
        ring_bytes_sent_per_rank_per_step: Math.round((2 * (o.nproc - 1) / o.nproc) * bucketBytes),
      },
      machine: machineInfo(),
    };
  } finally {
    for (const t of [one.x, one.y]) t.dispose();
    one.opt.dispose();
    one.model.dispose();
  }
}

if (require.main === module) {
  worker(JSON.parse(process.argv[2]) as WorkerSpec).catch((e) => {
    process.stderr.write(`${(e as Error).name}: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
