import { Tensor } from '../engine/tensor';
import { tensor } from '../engine/creation';
import { withBatchRows } from '../engine/random';
import { Module } from '../nn/module';
import { InputError } from '../errors';
import { workerEnv } from './env';
import { ProcessGroup, DEFAULT_TIMEOUT_MS } from './process-group';
import { DistributedDataParallel, DdpOptions } from './ddp';
import type { GradientBucket } from './native';

/**
 * What a training loop needs to run as one rank of a data-parallel job, in one place: every rank
 * loads the same global batch (so augmentation and sampling do not depend on the world size) and
 * trains on its DistributedSampler share of it; DDP averages the gradients; decisions that must
 * agree (a non-finite loss, a stop request) and metrics go through the group; rank 0 writes.
 */
export class DataParallel {
  #ddp: DistributedDataParallel | null = null;

  private constructor(readonly group: ProcessGroup) {}

  /**
   * Joins the job a launcher (ours or torchrun) started this process in; null when it was not
   * started as a worker of more than one, so a one-process run takes no detour.
   */
  static async join(o: { timeoutMs?: number; iface?: string; env?: NodeJS.ProcessEnv } = {}): Promise<DataParallel | null> {
    const env = workerEnv(o.env ?? process.env);
    if (env === null || env.worldSize === 1) return null;
    const group = await ProcessGroup.fromEnv(env, { timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS, ...(o.iface !== undefined ? { iface: o.iface } : {}) });
    return new DataParallel(group);
  }

  get rank(): number { return this.group.rank; }
  get worldSize(): number { return this.group.worldSize; }
  /** Whether this rank writes the run folder (rank 0; the others only train and evaluate). */
  get writes(): boolean { return this.group.rank === 0; }

  /** Starts DDP on model: rank 0's weights everywhere, gradients averaged in backward. */
  async wrap(model: Module, o: DdpOptions = {}): Promise<void> {
    if (this.#ddp) throw new Error('DataParallel.wrap: already wrapping a model');
    this.#ddp = await DistributedDataParallel.wrap(this.group, model, o);
  }

  private get ddp(): DistributedDataParallel {
    if (!this.#ddp) throw new Error('DataParallel: wrap(model) first');
    return this.#ddp;
  }

  /** The rows of a global batch of n this rank trains on: j ≡ rank (mod world size), DistributedSampler's layout. */
  shareOf(n: number): number[] {
    if (n < this.worldSize) throw new InputError(`a batch of ${n} cannot be split over ${this.worldSize} processes (each needs at least one image): use a --batch of at least ${this.worldSize}`);
    return shareOf(n, this.rank, this.worldSize);
  }

  /** This rank's rows of t, a global batch along dim 0. */
  take(t: Tensor): Tensor {
    const rows = this.shareOf(t.size(0));
    const index = tensor(rows, { dtype: 'int64', device: t.device });
    try {
      return t.indexSelect(0, index);
    } finally {
      index.dispose();
    }
  }

  /**
   * What this rank's mean loss is multiplied by so that the average DDP takes is the global
   * batch's mean gradient even when n does not split evenly (an epoch's last batch): W·n_r/n.
   */
  lossScale(n: number): number {
    return (this.worldSize * this.shareOf(n).length) / n;
  }

  /**
   * A forward pass over this rank's share of a global batch of n that backward will follow (see
   * DistributedDataParallel.forward). Its per-example random draws (Gumbel noise, dropout) are this
   * rank's rows of the global batch's (withBatchRows), so they do not depend on the world size.
   */
  forward<T>(n: number, run: () => T, outputs: (result: T) => Tensor[]): T {
    return withBatchRows({ global: n, rows: this.shareOf(n) }, () => this.ddp.forward(run, outputs));
  }

  /** Whether any rank passes true: every rank gets the same answer (a non-finite loss, a stop request). */
  async any(flag: boolean): Promise<boolean> {
    const [n] = await this.sum([flag ? 1 : 0]);
    return n > 0;
  }

  /** Sums of values over ranks (loss sums, correct counts), in float64. */
  async sum(values: number[]): Promise<number[]> {
    const t = tensor(values, { dtype: 'float64' });
    try {
      await this.group.allReduce(t, 'sum');
      return t.toArray();
    } finally {
      t.dispose();
    }
  }

  /** Rank 0's buffers (BN's running statistics) on every rank: before evaluation and saving. */
  syncBuffers(): Promise<void> {
    return this.ddp.syncBuffers();
  }

  /** The wrapped model's gradient buckets (DistributedDataParallel.buckets). */
  buckets(): GradientBucket[] {
    return this.ddp.buckets();
  }

  barrier(): Promise<void> {
    return this.group.barrier();
  }

  /**
   * Ends DDP on the model but stays in the group, for the next run of the same job (compare's
   * methods × seeds): torch.distributed's default group outlives its DDP modules the same way.
   */
  unwrap(): void {
    this.#ddp?.dispose();
    this.#ddp = null;
  }

  /** Whether every rank holds the same values (elementwise, exactly): max and min over ranks agree. */
  async same(values: ArrayLike<number>): Promise<boolean> {
    const hi = tensor(Array.from(values), { dtype: 'float64' }), lo = tensor(Array.from(values), { dtype: 'float64' });
    try {
      await this.group.allReduce(hi, 'max');
      await this.group.allReduce(lo, 'min');
      const [a, b] = [hi.toArray() as number[], lo.toArray() as number[]];
      return a.every((v, i) => Object.is(v, b[i]));
    } finally {
      hi.dispose();
      lo.dispose();
    }
  }

  /** Ends DDP and leaves the group; call on every rank after the last collective. */
  close(): void {
    this.#ddp?.dispose();
    this.#ddp = null;
    this.group.destroy();
  }
}

/** Rows j of a batch of n with j ≡ rank (mod worldSize). */
export function shareOf(n: number, rank: number, worldSize: number): number[] {
  const rows: number[] = [];
  for (let j = rank; j < n; j += worldSize) rows.push(j);
  return rows;
}
