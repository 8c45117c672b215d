import { native } from './native';
import { DType, dtypeCode } from './dtype';
import { aten, Tensor } from './tensor';

type NestedNumbers = number | boolean | NestedNumbers[];

interface Options {
  dtype?: DType;
  device?: string;
  requiresGrad?: boolean;
}

function finish(t: Tensor, opts: Options): Tensor {
  if (opts.device && opts.device !== 'cpu') {
    const moved = t.to(opts.device);
    t.dispose();
    t = moved;
  }
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

function flatten(data: NestedNumbers, shape: number[], out: number[], depth = 0): void {
  if (Array.isArray(data)) {
    if (shape.length === depth) shape.push(data.length);
    else if (shape[depth] !== data.length) throw new Error(`tensor(): ragged nested array at depth ${depth}`);
    for (const d of data) flatten(d, shape, out, depth + 1);
  } else {
    if (depth !== shape.length) throw new Error('tensor(): ragged nested array');
    out.push(Number(data));
  }
}

/** A tensor from nested arrays of numbers, or from a flat typed array with a shape. */
export function tensor(data: NestedNumbers | ArrayLike<number> | BigInt64Array, opts: Options & { shape?: number[] } = {}): Tensor {
  const dtype = opts.dtype ?? (data instanceof BigInt64Array ? 'int64' : 'float32');
  let flat: ArrayLike<number> | BigInt64Array;
  let shape: number[];
  if (ArrayBuffer.isView(data)) {
    flat = data as unknown as ArrayLike<number>;
    shape = opts.shape ?? [flat.length];
  } else {
    const values: number[] = [];
    shape = [];
    flatten(data as NestedNumbers, shape, values);
    flat = values;
    if (opts.shape) shape = opts.shape;
  }
  // BigInt values cannot go through Float32Array.from and friends.
  if (flat instanceof BigInt64Array && dtype !== 'int64') flat = Array.from(flat, Number);
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== flat.length) throw new Error(`tensor(): ${flat.length} values do not fill shape [${shape}]`);
  let t: Tensor;
  switch (dtype) {
    case 'float32': t = fromTyped(flat instanceof Float32Array ? flat : Float32Array.from(flat as ArrayLike<number>), 'float32', shape); break;
    case 'float64': t = fromTyped(flat instanceof Float64Array ? flat : Float64Array.from(flat as ArrayLike<number>), 'float64', shape); break;
    case 'int64':
      t = fromTyped(flat instanceof BigInt64Array ? flat : BigInt64Array.from(Array.from(flat as ArrayLike<number>, (v) => BigInt(Math.trunc(v)))), 'int64', shape);
      break;
    case 'int32': t = fromTyped(flat instanceof Int32Array ? flat : Int32Array.from(flat as ArrayLike<number>), 'int32', shape); break;
    case 'uint8': t = fromTyped(flat instanceof Uint8Array ? flat : Uint8Array.from(flat as ArrayLike<number>), 'uint8', shape); break;
    case 'bool': t = fromTyped(Uint8Array.from(flat as ArrayLike<number>, (v) => (v ? 1 : 0)), 'bool', shape); break;
    default: {
      const f = fromTyped(Float32Array.from(flat as ArrayLike<number>), 'float32', shape);
      t = f.to(dtype);
      f.dispose();
    }
  }
  return finish(t, opts);
}

/** Copies a typed array whose element layout is exactly dtype's into a new tensor. */
export function fromTyped(data: ArrayBufferView, dtype: DType, shape: number[]): Tensor {
  return new Tensor(native.fromBuffer(data, dtypeCode(dtype), shape));
}

function factory(name: string, overload: string, shape: number[], opts: Options): Tensor {
  const t = aten(`aten::${name}`, overload, [shape], { dtype: dtypeCode(opts.dtype ?? 'float32'), device: opts.device ?? null });
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

export const zeros = (shape: number[], opts: Options = {}) => factory('zeros', '', shape, opts);
export const ones = (shape: number[], opts: Options = {}) => factory('ones', '', shape, opts);
export const empty = (shape: number[], opts: Options = {}) => factory('empty', 'memory_format', shape, opts);
export function full(shape: number[], value: number, opts: Options = {}): Tensor {
  const t = aten('aten::full', '', [shape, value], { dtype: dtypeCode(opts.dtype ?? 'float32'), device: opts.device ?? null });
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}
export function arange(end: number, opts: Options = {}): Tensor {
  return aten('aten::arange', '', [end], { dtype: dtypeCode(opts.dtype ?? 'int64'), device: opts.device ?? null });
}
export function eye(n: number, opts: Options = {}): Tensor {
  return aten('aten::eye', '', [n], { dtype: dtypeCode(opts.dtype ?? 'float32'), device: opts.device ?? null });
}
export const zerosLike = (t: Tensor): Tensor => aten('aten::zeros_like', '', [t]);
export const onesLike = (t: Tensor): Tensor => aten('aten::ones_like', '', [t]);

export function cat(tensors: Tensor[], dim = 0): Tensor {
  return aten('aten::cat', '', [tensors, dim]);
}
export function stack(tensors: Tensor[], dim = 0): Tensor {
  return aten('aten::stack', '', [tensors, dim]);
}

// PyTorch's new_zeros / new_full / new_empty: a tensor made mid-forward takes dtype and device from
// the tensor it goes with, so a float64 or CUDA pass stays float64 or on CUDA throughout.
/** Zeros of `shape` with like's dtype and device. */
export const newZeros = (like: Tensor, shape: number[]): Tensor => aten('aten::new_zeros', '', [like, shape]);
/** `value` everywhere in `shape`, with like's dtype and device. */
export const newFull = (like: Tensor, shape: number[], value: number): Tensor => aten('aten::new_full', '', [like, shape, value]);
/** Uninitialised `shape` with like's dtype and device (to be filled in place: uniform_, exponential_). */
export const newEmpty = (like: Tensor, shape: number[]): Tensor => aten('aten::new_empty', '', [like, shape]);
