import { Tensor } from '../engine/tensor';
import { Module } from '../nn/module';
import { distNative, GradientBucket } from './native';
import { ProcessGroup } from './process-group';

export interface DdpOptions {
  /**
   * Search each step's graph for parameters this rank did not use (AdaFilter's and SpotTune's
   * skipped paths), so their buckets are reduced anyway instead of waiting for gradients forever.
   */
  findUnused?: boolean;
  /** Gradient bucket size, PyTorch's bucket_cap_mb (25). */
  bucketCapMB?: number;
}

/**
 * PyTorch's DistributedDataParallel over a Module, on c10d's own C++ Reducer: at start every
 * rank's parameters and buffers are checked against rank 0's and overwritten with its values;
 * during each backward, gradients are averaged over ranks in buckets as they become ready, so
 * after backward every rank holds the same .grad and an optimizer step keeps the replicas equal.
 *
 * A training step is forward() around the module's forward pass, then backward as usual. Steps
 * that do not call backward (evaluation) run the module directly, as with PyTorch's no_grad.
 */
export class DistributedDataParallel {
  #id: number | null;

  private constructor(id: number, readonly group: ProcessGroup, readonly findUnused: boolean, private readonly buffers: Tensor[]) {
    this.#id = id;
  }

  static async wrap(group: ProcessGroup, module: Module, o: DdpOptions = {}): Promise<DistributedDataParallel> {
    const named = module.namedParameters().filter(([, p]) => p.requiresGrad);
    const buffers = module.namedBuffers().map(([, b]) => b);
    await group.syncFromRank0([...named.map(([, p]) => p as Tensor), ...buffers]);
    const findUnused = o.findUnused ?? false;
    const id = distNative.ddpCreate(group.id, named.map(([, p]) => p.handle), {
      bucketCapBytes: Math.round((o.bucketCapMB ?? 25) * 1024 * 1024), findUnused, names: named.map(([n]) => n),
    });
    return new DistributedDataParallel(id, group, findUnused, buffers);
  }

  private get id(): number {
    if (this.#id === null) throw new Error('DistributedDataParallel used after dispose()');
    return this.#id;
  }

  /**
   * Runs one forward pass that backward will follow: DDP's bookkeeping before it, then arms the
   * gradient hooks with the tensors backward will start from (outputs(result); with findUnused the
   * graph behind them tells which parameters this rank skipped).
   */
  forward<T>(run: () => T, outputs: (result: T) => Tensor[]): T {
    distNative.ddpPrepareForward(this.id);
    const result = run();
    distNative.ddpPrepareBackward(this.id, this.findUnused ? outputs(result).map((t) => t.handle) : []);
    return result;
  }

  /**
   * Gives every rank rank 0's buffers (BN's running statistics, which each rank otherwise updates
   * from its own micro-batches, as PyTorch's DDP without SyncBN): PyTorch's broadcast_buffers, for
   * before evaluation and saving, so that every rank evaluates and keeps the same model.
   */
  syncBuffers(): Promise<void> {
    return this.group.syncFromRank0(this.buffers);
  }

  /**
   * The gradient buckets in the order they are all-reduced, one all-reduce each per step: from the
   * registration order before the first step, rebuilt by then from the order gradients became ready.
   */
  buckets(): GradientBucket[] {
    return distNative.ddpBuckets(this.id);
  }

  /** Removes the gradient hooks; the module trains alone again. Disposing twice is harmless. */
  dispose(): void {
    if (this.#id !== null) {
      distNative.ddpDestroy(this.#id);
      this.#id = null;
    }
  }
}
