import { native, TensorHandle } from '../engine/native';

/** The addon's dist module (native/src/dist.cc): c10d's TCPStore, Gloo process group and DDP Reducer. */
export interface DistNative {
  /** False when the addon was built without Gloo; every other call then throws saying how to get it. */
  distAvailable(): boolean;
  distInit(o: {
    rank: number; worldSize: number; masterAddr: string; masterPort: number; timeoutMs: number;
    iface?: string; hostname?: string; storeServer?: boolean; storePrefix?: string;
  }): Promise<number>;
  distDestroy(group: number): void;
  distBarrier(group: number): Promise<void>;
  distBroadcast(group: number, t: TensorHandle, root: number): Promise<void>;
  distAllReduce(group: number, t: TensorHandle, op: ReduceOp): Promise<void>;
  distSyncFromRank0(group: number, tensors: TensorHandle[], bufferBytes: number): Promise<void>;
  ddpCreate(group: number, params: TensorHandle[], o: { bucketCapBytes: number; findUnused: boolean; names?: string[] }): number;
  ddpPrepareForward(ddp: number): void;
  ddpPrepareBackward(ddp: number, outputs: TensorHandle[]): void;
  ddpBuckets(ddp: number): GradientBucket[];
  ddpDestroy(ddp: number): void;
}

/** One of the Reducer's gradient buckets: its flat buffer's size and how many parameters' gradients it holds. */
export interface GradientBucket {
  bytes: number;
  parameters: number;
}

export type ReduceOp = 'sum' | 'product' | 'min' | 'max';

// The engine's Native interface is the tensor surface; the dist functions are typed here, where
// they are used, on the same loaded addon (or its stand-in that explains why it did not load).
export const distNative = native as unknown as DistNative;
