import { Tensor } from '../engine/tensor';
import { distNative, ReduceOp } from './native';
import { WorkerEnv } from './env';

/** A collective or the rendezvous failed: a peer died, hung past the timeout, or never came. */
export class DistError extends Error {
  override name = 'DistError';
}

export interface ProcessGroupOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** How long a rendezvous or a collective may wait for a peer; PyTorch's default, 30 minutes. */
  timeoutMs?: number;
  /** The network interface Gloo binds to (GLOO_SOCKET_IFNAME's role); by default the address the machine's host name resolves to. */
  iface?: string;
  /** Who serves the rendezvous store, and the prefix of the group's keys in it: rank 0, under 'adafilter', by default. */
  store?: { server: boolean; prefix: string };
}

export const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;
// DDP's broadcast_bucket_size: rank 0's parameters go out in buckets of this many bytes.
const SYNC_BUCKET_BYTES = 250 * 1024 * 1024;

const isLoopback = (host: string): boolean => host === 'localhost' || /^127\./.test(host) || host === '::1';

/** The native rejection as a DistError; in a group of two, the peer Gloo names by address is the other rank. */
async function settled<T>(p: Promise<T>, group?: { rank: number; worldSize: number }): Promise<T> {
  try {
    return await p;
  } catch (e) {
    const peer = group?.worldSize === 2 && /\bpeer\b/i.test((e as Error).message) ? ` (the peer is rank ${1 - group.rank})` : '';
    throw new DistError(`${(e as Error).message}${peer}`);
  }
}

/**
 * A Gloo process group: every rank of the job, connected pairwise over TCP after meeting at rank
 * 0's TCPStore. Collectives work in place on dense contiguous CPU tensors, must be issued in the
 * same order on every rank, and return Promises that reject with a DistError naming this rank
 * (and Gloo's peer address) when a peer dies or the timeout passes; misuse (a disposed tensor, a
 * destroyed group) rejects too, never throws. A tensor must not be changed until its collective
 * has settled.
 */
export class ProcessGroup {
  #id: number | null;

  private constructor(id: number, readonly rank: number, readonly worldSize: number, readonly timeoutMs: number) {
    this.#id = id;
  }

  static async init(o: ProcessGroupOptions): Promise<ProcessGroup> {
    const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    // On one machine the peers meet on loopback; elsewhere Gloo binds where the host name resolves.
    const hostname = o.iface === undefined && isLoopback(o.masterAddr) ? o.masterAddr : undefined;
    const id = await settled(distNative.distInit({
      rank: o.rank, worldSize: o.worldSize, masterAddr: o.masterAddr, masterPort: o.masterPort, timeoutMs,
      ...(o.iface !== undefined ? { iface: o.iface } : {}), ...(hostname !== undefined ? { hostname } : {}),
      ...(o.store ? { storeServer: o.store.server, storePrefix: o.store.prefix } : {}),
    }));
    return new ProcessGroup(id, o.rank, o.worldSize, timeoutMs);
  }

  /** The group a launcher's environment describes (see workerEnv): ours, or torchrun's with its agent's store. */
  static fromEnv(env: WorkerEnv, o: { timeoutMs?: number; iface?: string } = {}): Promise<ProcessGroup> {
    return ProcessGroup.init({
      rank: env.rank, worldSize: env.worldSize, masterAddr: env.masterAddr, masterPort: env.masterPort, ...o,
      ...(env.agentStorePrefix !== null ? { store: { server: false, prefix: env.agentStorePrefix } } : {}),
    });
  }

  /** The native group id, for the DDP reducer. */
  get id(): number {
    if (this.#id === null) throw new Error('process group used after destroy()');
    return this.#id;
  }

  async barrier(): Promise<void> {
    return settled(distNative.distBarrier(this.id), this);
  }

  /** t takes root's values on every rank. */
  async broadcast(t: Tensor, root = 0): Promise<void> {
    return settled(distNative.distBroadcast(this.id, t.handle, root), this);
  }

  /** t becomes the elementwise reduction of every rank's t (Gloo has no average: divide a sum). */
  async allReduce(t: Tensor, op: ReduceOp = 'sum'): Promise<void> {
    return settled(distNative.distAllReduce(this.id, t.handle, op), this);
  }

  /**
   * DDP's start: checks that every rank holds the same number of tensors with the same shapes and
   * dtypes (a mismatch names the first tensor that differs), then copies rank 0's values to all.
   */
  async syncFromRank0(tensors: Tensor[]): Promise<void> {
    return settled(distNative.distSyncFromRank0(this.id, tensors.map((t) => t.handle), SYNC_BUCKET_BYTES), this);
  }

  /** Releases the group; call after every collective has settled. Destroying twice is harmless. */
  destroy(): void {
    if (this.#id !== null) {
      distNative.distDestroy(this.#id);
      this.#id = null;
    }
  }
}

/** Whether this addon was built with Gloo (multi-process training). */
export function distAvailable(): boolean {
  return distNative.distAvailable();
}
