import * as path from 'node:path';
import * as fs from 'node:fs';

/** A handle owning one at::Tensor inside the addon. */
export interface TensorHandle {
  dispose(): void;
  readonly disposed: boolean;
}

export interface TensorMeta {
  shape: number[];
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

const opIds = new Map<string, number>();

/** Resolves an ATen operator once ("aten::conv2d", overload "") and caches its id. */
export function opId(name: string, overload = ''): number {
  const key = `${name}.${overload}`;
  let id = opIds.get(key);
  if (id === undefined) {
    id = native.findOp(name, overload);
    opIds.set(key, id);
  }
  return id;
}
