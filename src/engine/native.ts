import * as path from 'node:path';
import * as fs from 'node:fs';
import { InputError } from '../errors';

/** A number naming one at::Tensor in the addon's table (slot and generation). */
export type TensorHandle = number;

export interface TensorMeta {
  shape: number[];
  strides: number[];
  dtype: number;
  device: string;
  requiresGrad: boolean;
  isLeaf: boolean;
}

type Arg = unknown;

/** The addon's surface: generic operator calls plus the few entry points that are not operators. */
export interface Native {
  findOp(name: string, overload: string): number;
  call(op: number, args: Arg[], kwargs?: Record<string, Arg>): any;
  callVoid(op: number, args: Arg[], kwargs?: Record<string, Arg>): void;
  opSchema(op: number): string;
  opReturns(op: number): ('t' | 'l' | 'v')[];
  dispose(t: TensorHandle): boolean;
  setData(t: TensorHandle, source: TensorHandle): void;
  isLive(t: TensorHandle): boolean;
  /** From now until it is disposed, t's bytes count in V8's external memory (no scope owns it; only the GC would free it if forgotten). */
  countForGc(t: TensorHandle): boolean;
  emptyCache(): number;
  cachedBytes(): number;
  fromBuffer(data: ArrayBufferView, dtype: number, shape: number[]): TensorHandle;
  toBuffer(t: TensorHandle): ArrayBuffer;
  meta(t: TensorHandle): TensorMeta;
  shape(t: TensorHandle): number[];
  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number): void;
  setGradEnabled(enabled: boolean): boolean;
  isGradEnabled(): boolean;
  setAutocast(enabled: boolean, dtype?: number): boolean;
  /** Sets autocast of one device type; returns what it replaced: [enabled, dtype code]. */
  autocastState(device: 'cpu' | 'cuda', enabled: boolean, dtype?: number): [boolean, number];
  backward(roots: TensorHandle[], grads: (TensorHandle | null)[] | null, retainGraph?: boolean, createGraph?: boolean): void;
  grad(outputs: TensorHandle[], inputs: TensorHandle[], gradOutputs: (TensorHandle | null)[] | null,
    retainGraph?: boolean, createGraph?: boolean, allowUnused?: boolean): (TensorHandle | null)[];
  tensorGrad(t: TensorHandle): TensorHandle | null;
  setTensorGrad(t: TensorHandle, grad: TensorHandle | null): void;
  setRequiresGrad(t: TensorHandle, flag: boolean): void;
  liveTensors(): number;
  version(): string;
  cudaDeviceCount(): number;
  /** Whether this libtorch was built with CUDA (whatever GPUs the machine has). */
  cudaBuilt(): boolean;
  parallelInfo(): string;
  /** Starts recording every op libtorch dispatches (engine/op-trace.ts). */
  opTraceStart(): void;
  opTraceStop(): OpRecord[];
}

/** One dispatched op as libtorch's profiler reports it: input dtypes ('Scalar', '' for non-tensors) and shapes. */
export interface OpRecord {
  name: string;
  /** 0 for an op called from outside libtorch, n + 1 for one called inside an op at depth n. */
  depth: number;
  dtypes: string[];
  shapes: number[][];
}

/** native/build.js, the addon's build step (plain JS: scripts/setup.sh runs it before tsc), in a checkout and in node_modules/adafilter alike. */
export const NATIVE_BUILD_SCRIPT = path.resolve(__dirname, '..', '..', '..', 'native', 'build.js');
/** Where that script builds the addon. */
const ADDON_FILE: string = (require(NATIVE_BUILD_SCRIPT) as { ADDON: string }).ADDON;

/**
 * The addon, or, when it is not built or libtorch does not load, a stand-in that throws one
 * InputError naming the fix on first use: `adafilter setup` and `--help` must run without it.
 */
function load(): Native {
  let problem: string;
  if (!fs.existsSync(ADDON_FILE)) {
    problem = `the native addon is not built (${ADDON_FILE} is missing): run \`npx adafilter setup\``;
  } else {
    try {
      return require(ADDON_FILE) as Native;
    } catch (e) {
      const why = ((e as Error).message ?? String(e)).split('\n')[0];
      problem = `the native addon does not load (${why}): rebuild it with \`npx adafilter setup\``;
    }
  }
  return new Proxy({} as Native, { get() { throw new InputError(problem); } });
}

export const native: Native = load();

/** A resolved ATen operator: its id in the addon and what kind each result is. */
export interface Op {
  id: number;
  returns: ('t' | 'l' | 'v')[];
}

const ops = new Map<string, Op>();

/** Resolves an ATen operator once ("aten::conv2d", overload "") and caches it. */
export function op(name: string, overload = ''): Op {
  const key = `${name}.${overload}`;
  let o = ops.get(key);
  if (o === undefined) {
    const id = native.findOp(name, overload);
    o = { id, returns: native.opReturns(id) };
    ops.set(key, o);
  }
  return o;
}
