import * as path from 'node:path';
import * as fs from 'node:fs';

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
  backward(roots: TensorHandle[], grads: (TensorHandle | null)[] | null, retainGraph?: boolean, createGraph?: boolean): void;
  grad(outputs: TensorHandle[], inputs: TensorHandle[], gradOutputs: (TensorHandle | null)[] | null,
    retainGraph?: boolean, createGraph?: boolean, allowUnused?: boolean): (TensorHandle | null)[];
  tensorGrad(t: TensorHandle): TensorHandle | null;
  setTensorGrad(t: TensorHandle, grad: TensorHandle | null): void;
  setRequiresGrad(t: TensorHandle, flag: boolean): void;
  liveTensors(): number;
  version(): string;
  cudaDeviceCount(): number;
  parallelInfo(): string;
}

function load(): Native {
  const root = path.resolve(__dirname, '..', '..', '..');
  const file = path.join(root, 'native', 'build', 'Release', 'adafilter.node');
  if (!fs.existsSync(file)) {
    throw new Error(`adafilter: native addon not built (${file} is missing); run 'npm run setup'`);
  }
  return require(file) as Native;
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
