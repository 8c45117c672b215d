/**
 * A training run as one rank of a data-parallel job (PyTorch DDP's semantics, on src/dist/): what
 * fineTune asks of the job at its few points of contact — the rank's share of each global batch,
 * the gradient all-reduce around forward and backward, one collective per step that decides
 * together (a non-finite loss, a stop request) and sums the step's metrics, BN buffers from rank 0
 * before evaluation and saving, sharded evaluation, rank 0's best weights for the test, and a
 * check at the end that every replica holds the same model.
 *
 * Every rank loads the same global batch (augmentation drawn for all of it, so the images do not
 * depend on the world size) and trains on its DistributedSampler share, with its rows of the global
 * batch's Gumbel noise and dropout masks (withBatchRows); only rank 0 writes.
 */
import { DataParallel, shareOf } from '../dist/data-parallel';
import { workerEnv } from '../dist/env';
import { DistError } from '../dist/process-group';
import { InputError } from '../errors';
import { Tensor } from '../engine/tensor';
import { MethodModel } from '../methods/method';
import type { Batch, Loader } from '../data/loader';
import { evaluateModel, Evaluation, EvaluateModelOptions } from './evaluate';

/** How a worker joins its job: the --dist-* flags. */
export interface DistOptions {
  /** How long a rendezvous or collective waits for a peer (--dist-timeout); PyTorch's 30 minutes by default. */
  timeoutMs?: number;
  /** The network interface Gloo binds to (--dist-iface). */
  iface?: string;
}

// One group per process, as torch.distributed's default group: every run of a compare job shares it.
let joined: Promise<DataParallel | null> | null = null;

function joinJob(o: DistOptions): Promise<DataParallel | null> {
  joined ??= DataParallel.join(o);
  return joined;
}

/** Leaves the job this process joined (every rank, after its last run); harmless when none. */
export async function leaveJob(): Promise<void> {
  const dp = await joined;
  joined = null;
  dp?.close();
}

/**
 * Whether this process writes outputs: true unless a launcher started it as a rank other than 0.
 * Read from the environment, so callers around fineTune (pretrain's weights, compare's table) agree with it.
 */
export function writesOutputs(env: NodeJS.ProcessEnv = process.env): boolean {
  const w = workerEnv(env);
  return w === null || w.worldSize === 1 || w.rank === 0;
}

/** This rank's rows of a loader batch (j ≡ rank mod world size), with their images, labels and feature-cache rows. */
export function batchShare(b: Batch, rank: number, worldSize: number): Batch {
  const rows = shareOf(b.y.length, rank, worldSize);
  const per = b.shape[1] * b.shape[2] * b.shape[3];
  const x = new Float32Array(b.x.length ? rows.length * per : 0);
  if (b.x.length) rows.forEach((j, i) => x.set(b.x.subarray(j * per, (j + 1) * per), i * per));
  return {
    x, y: Int32Array.from(rows, (j) => b.y[j]), shape: [rows.length, b.shape[1], b.shape[2], b.shape[3]],
    ...(b.rows ? { rows: Int32Array.from(rows, (j) => b.rows![j]) } : {}),
  };
}

/** A step as this rank saw it. */
export interface LocalStep {
  /** This rank's mean loss. */
  loss: number;
  images: number;
  correct: number;
  /** This rank was asked to stop (SIGINT). */
  stop: boolean;
}

/** The step as every rank sees it. */
export interface AgreedStep {
  /** The global batch's mean loss; NaN when any rank's loss was not finite. */
  loss: number;
  correct: number;
  stop: boolean;
}

export class RunRanks {
  private constructor(private readonly dp: DataParallel) {}

  /** The job this process is a worker of, or null for a run of one process. */
  static async join(o: DistOptions = {}): Promise<RunRanks | null> {
    const dp = await joinJob(o);
    return dp ? new RunRanks(dp) : null;
  }

  get rank(): number { return this.dp.rank; }
  get worldSize(): number { return this.dp.worldSize; }
  get writes(): boolean { return this.dp.writes; }

  /** Every batch of an epoch must give each rank at least one image (DDP needs every rank's backward). */
  checkSplit(trainSize: number, batch: number): void {
    const last = trainSize % batch;
    const smallest = trainSize < batch ? trainSize : last === 0 ? batch : last;
    if (smallest < this.worldSize) {
      throw new InputError(`--batch ${batch} over ${trainSize} training images leaves a batch of ${smallest}, fewer than the ${this.worldSize} processes: choose a --batch that leaves every batch at least ${this.worldSize} images`);
    }
  }

  /** DDP over the model: rank 0's parameters and buffers everywhere; gated methods search for unused parameters each step. */
  wrap(model: MethodModel, gated: boolean): Promise<void> {
    return this.dp.wrap(model, { findUnused: gated });
  }

  local(b: Batch): Batch {
    return batchShare(b, this.rank, this.worldSize);
  }

  /** The factor on this rank's mean loss that makes DDP's average the global batch's mean (an uneven last batch). */
  lossScale(n: number): number {
    return this.dp.lossScale(n);
  }

  /** The step's forward pass over this rank's share of a global batch of n (DataParallel.forward). */
  forward<T>(n: number, run: () => T, outputs: (result: T) => Tensor[]): T {
    return this.dp.forward(n, run, outputs);
  }

  /** One collective per step: any rank's non-finite loss or stop request, and the summed loss and hits. */
  async agree(s: LocalStep): Promise<AgreedStep> {
    const finite = Number.isFinite(s.loss);
    const [bad, lossSum, correct, images, stop] = await this.dp.sum([finite ? 0 : 1, finite ? s.loss * s.images : 0, s.correct, s.images, s.stop ? 1 : 0]);
    return { loss: bad > 0 ? NaN : lossSum / images, correct, stop: stop > 0 };
  }

  /** Rank 0's BN statistics on every rank, so that every rank evaluates and saves the same model. */
  syncBuffers(): Promise<void> {
    return this.dp.syncBuffers();
  }

  /**
   * A split evaluated in shards (each rank its share of every batch) and summed, so every rank gets
   * the same numbers and picks the same best epoch. Gate statistics do not sum: a gated method's
   * evaluation runs whole on every rank (the same model on the same images: the same result).
   */
  async evaluate(model: MethodModel, loader: Loader, gated: boolean, o: EvaluateModelOptions): Promise<Evaluation> {
    if (gated) return evaluateModel(model, loader, o);
    const classes = loader.classes;
    const counts = new Float64Array(classes.length);
    const { rank, worldSize } = this;
    const shard = {
      classes,
      async *epoch(e: number): AsyncGenerator<Batch> {
        for await (const b of loader.epoch(e)) {
          const s = batchShare(b, rank, worldSize);
          if (!s.y.length) continue;
          for (const y of s.y) counts[y]++;
          yield s;
        }
      },
    } as unknown as Loader;
    const v = await evaluateModel(model, shard, { ...o, gates: false });
    const hits = classes.map((c, i) => (counts[i] ? Math.round((v.perClass[c] ?? 0) * counts[i]) : 0));
    const [lossSum, n, ...rest] = await this.dp.sum([v.examples ? v.loss * v.examples : 0, v.examples, ...hits, ...counts]);
    const allHits = rest.slice(0, classes.length), allCounts = rest.slice(classes.length);
    const perClass: Record<string, number> = {};
    classes.forEach((c, i) => { if (allCounts[i]) perClass[c] = allHits[i] / allCounts[i]; });
    const correct = allHits.reduce((a, b) => a + b, 0);
    return { acc: n ? correct / n : NaN, loss: n ? lossSum / n : NaN, examples: n, perClass, gates: null };
  }

  /** Rank 0's parameters and buffers on every rank (the best weights rank 0 read back from its run folder). */
  async shareModel(model: MethodModel): Promise<void> {
    await this.dp.group.syncFromRank0([...model.namedParameters().map(([, p]) => p as Tensor), ...model.namedBuffers().map(([, b]) => b as Tensor)]);
  }

  /** Whether every rank holds the same value (a resumed run's position: ranks that could not all read the run folder). */
  same(values: number[]): Promise<boolean> {
    return this.dp.same(values);
  }

  /** Fails unless every replica holds the same parameters, bit for bit: DDP's promise, checked at the end of a run. */
  async verifyReplicas(model: MethodModel): Promise<number> {
    const params = model.namedParameters().map(([, p]) => p as Tensor);
    const values: number[] = [];
    for (const p of params) for (const v of p.toArray()) values.push(v);
    if (!(await this.dp.same(values))) throw new DistError(`the ${this.worldSize} ranks ended with different parameters (rank ${this.rank}): the replicas diverged`);
    return params.length;
  }

  barrier(): Promise<void> {
    return this.dp.barrier();
  }

  /** The run is over: DDP off the model; the group stays for the job's next run. */
  end(): void {
    this.dp.unwrap();
  }
}
