import { native, op, Op, TensorHandle } from './native';
import { DType, dtypeCode, dtypeName, TypedArray, typedArrayFor } from './dtype';
import { track, keep } from './scope';

export type Shape = readonly number[];
type Operand = Tensor | number;

/** Calls an ATen operator by name; tensors in args are unwrapped, a tensor result wrapped. */
export function aten(name: string, overload: string, args: unknown[], kwargs?: Record<string, unknown>): any {
  const o = op(name, overload);
  return wrapResults(o, native.call(o.id, unwrapArgs(args), kwargs && unwrapKwargs(kwargs)));
}

/** The same, for in-place operators whose result is the tensor they were called on. */
export function atenVoid(name: string, overload: string, args: unknown[], kwargs?: Record<string, unknown>): void {
  native.callVoid(op(name, overload).id, unwrapArgs(args), kwargs && unwrapKwargs(kwargs));
}

function unwrap(a: unknown): unknown {
  if (a instanceof Tensor) return a.handle;
  if (Array.isArray(a)) return a.map(unwrap);
  return a;
}

function unwrapArgs(args: unknown[]): unknown[] {
  return args.map(unwrap);
}

function unwrapKwargs(kwargs: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(kwargs)) out[k] = v instanceof Tensor ? v.handle : v;
  return out;
}

function wrap(kind: 't' | 'l' | 'v', r: any): any {
  if (r === null || kind === 'v') return r;
  return kind === 't' ? new Tensor(r) : (r as TensorHandle[]).map((h) => new Tensor(h));
}

function wrapResults(o: Op, r: any): any {
  return o.returns.length === 1 ? wrap(o.returns[0], r) : o.returns.map((k, i) => wrap(k, r[i]));
}

// Safety net only: a tensor that was never disposed is freed some time after the GC collects it.
// Only tensors no scope owns are registered (and their bytes counted in V8's external memory, so that
// forgotten ones are collected under memory pressure): a scope holds its tensors until it frees them,
// so for those the registration (and an external-memory count that started major GCs in forward
// passes whose activations a scope keeps) would be pure cost.
const finalizer = new FinalizationRegistry<TensorHandle>((h) => native.dispose(h));

let watcher: ((t: Tensor) => void) | null = null;

/**
 * Runs fn and shows onTensor every tensor made meanwhile (operator results, creations, copies),
 * as it is made: what checks that a pass makes nothing in the wrong dtype or on the wrong device.
 */
export function watchTensors<T>(fn: () => T, onTensor: (t: Tensor) => void): T {
  const previous = watcher;
  watcher = onTensor;
  try {
    return fn();
  } finally {
    watcher = previous;
  }
}

/**
 * An n-dimensional array in libtorch. Operations return new tensors; methods ending in `_` modify
 * the tensor in place (as in PyTorch). Native memory is freed by dispose() or by the tidy() scope
 * the tensor was made in; the GC frees forgotten ones eventually.
 */
export class Tensor {
  #handle: TensorHandle | null;
  /** Registered with the finalizer and counted for the GC: no scope owns it. */
  #gcOwned = false;

  constructor(handle: TensorHandle, tracked = true) {
    this.#handle = handle;
    if (!(tracked && track(this))) this.leftScopes();
    if (watcher !== null) watcher(this);
  }

  /** No scope will free this tensor (scope.ts calls it): the GC's safety net takes over. */
  leftScopes(): void {
    if (this.#handle === null || this.#gcOwned) return;
    this.#gcOwned = true;
    finalizer.register(this, this.#handle, this);
    native.countForGc(this.#handle);
  }

  /** The addon's handle; an Error once the tensor is disposed. */
  get handle(): TensorHandle {
    if (this.#handle === null) throw new Error('tensor used after dispose()');
    return this.#handle;
  }

  /** Hands the native tensor over to a new owner (a Parameter); this object becomes unusable. */
  protected static takeHandle(t: Tensor): TensorHandle {
    const h = t.handle;
    if (t.#gcOwned) finalizer.unregister(t);
    t.#handle = null;
    keep(t);
    return h;
  }

  dispose(): void {
    if (this.#handle !== null) {
      native.dispose(this.#handle);
      if (this.#gcOwned) finalizer.unregister(this);
      this.#handle = null;
    }
  }

  get isDisposed(): boolean {
    return this.#handle === null || !native.isLive(this.#handle);
  }

  // ---- metadata ----
  get shape(): number[] { return native.shape(this.handle); }
  get strides(): number[] { return native.meta(this.handle).strides; }
  get ndim(): number { return this.shape.length; }
  get numel(): number { return this.shape.reduce((a, b) => a * b, 1); }
  get dtype(): DType { return dtypeName(native.meta(this.handle).dtype); }
  get device(): string { return native.meta(this.handle).device; }
  get requiresGrad(): boolean { return native.meta(this.handle).requiresGrad; }
  get isLeaf(): boolean { return native.meta(this.handle).isLeaf; }
  size(dim: number): number {
    const s = this.shape;
    return s[dim < 0 ? s.length + dim : dim];
  }

  // ---- data out ----
  /** The elements in row-major order, in the typed array of the dtype. */
  data(): TypedArray {
    return typedArrayFor(this.dtype, native.toBuffer(this.handle));
  }
  toFloat32Array(): Float32Array {
    if (this.dtype === 'float32') return this.data() as Float32Array;
    const t = this.to('float32');
    try { return t.data() as Float32Array; } finally { t.dispose(); }
  }
  /** The elements as JS numbers (16-bit floats converted to their values, int64 rounded past 2^53). */
  toArray(): number[] {
    const dt = this.dtype;
    if (dt === 'bfloat16' || dt === 'float16') return Array.from(this.toFloat32Array());
    const d = this.data();
    return d instanceof BigInt64Array ? Array.from(d, Number) : Array.from(d as ArrayLike<number>);
  }
  /** The value of a one-element tensor as a JS number (int64 beyond 2^53 loses precision; use data()). */
  item(): number {
    const v = native.call(op('aten::item').id, [this.handle]);
    return typeof v === 'boolean' ? Number(v) : v;
  }

  // ---- conversion and copies ----
  /** A dtype or device conversion; nonBlocking copies from pinned host memory asynchronously (CUDA). */
  to(dtypeOrDevice: DType | string, opts: { copy?: boolean; nonBlocking?: boolean } = {}): Tensor {
    const nonBlocking = opts.nonBlocking ?? false;
    if (isDType(dtypeOrDevice)) return aten('aten::to', 'dtype', [this, dtypeCode(dtypeOrDevice), nonBlocking, opts.copy ?? false]);
    return aten('aten::to', 'dtype_layout', [this], { device: dtypeOrDevice, non_blocking: nonBlocking, copy: opts.copy ?? false });
  }
  /** A copy in page-locked host memory (needs CUDA), which a non-blocking copy to the GPU can read. */
  pinMemory(): Tensor { return aten('aten::pin_memory', '', [this]); }
  float(): Tensor { return this.to('float32'); }
  long(): Tensor { return this.to('int64'); }
  clone(): Tensor { return aten('aten::clone', '', [this]); }
  contiguous(format: 'contiguous' | 'channels_last' = 'contiguous'): Tensor {
    return aten('aten::contiguous', '', [this], { memory_format: format === 'channels_last' ? 2 : 0 });
  }
  detach(): Tensor { return aten('aten::detach', '', [this]); }

  /** Swaps in source's data (storage, shape, strides, dtype) keeping this tensor's identity: PyTorch's `t.data = source`. */
  setData_(source: Tensor): this { native.setData(this.handle, source.handle); return this; }

  // ---- autograd ----
  requiresGrad_(flag = true): this { native.setRequiresGrad(this.handle, flag); return this; }
  /** The accumulated gradient (a new handle on it), or null. */
  get grad(): Tensor | null {
    const g = native.tensorGrad(this.handle);
    return g === null ? null : new Tensor(g);
  }
  set grad(g: Tensor | null) { native.setTensorGrad(this.handle, g === null ? null : g.handle); }
  backward(gradient?: Tensor, opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    native.backward([this.handle], gradient ? [gradient.handle] : null, opts.retainGraph, opts.createGraph ?? false);
  }

  // ---- shape ----
  reshape(...shape: number[]): Tensor { return aten('aten::reshape', '', [this, shape]); }
  view(...shape: number[]): Tensor { return aten('aten::view', '', [this, shape]); }
  flatten(startDim = 0, endDim = -1): Tensor { return aten('aten::flatten', 'using_ints', [this, startDim, endDim]); }
  permute(...dims: number[]): Tensor { return aten('aten::permute', '', [this, dims]); }
  transpose(d0: number, d1: number): Tensor { return aten('aten::transpose', 'int', [this, d0, d1]); }
  t(): Tensor { return this.transpose(0, 1); }
  squeeze(dim?: number): Tensor { return dim === undefined ? aten('aten::squeeze', '', [this]) : aten('aten::squeeze', 'dim', [this, dim]); }
  unsqueeze(dim: number): Tensor { return aten('aten::unsqueeze', '', [this, dim]); }
  expand(...shape: number[]): Tensor { return aten('aten::expand', '', [this, shape]); }
  narrow(dim: number, start: number, length: number): Tensor { return aten('aten::narrow', '', [this, dim, start, length]); }
  slice(dim: number, start?: number, end?: number, step = 1): Tensor { return aten('aten::slice', 'Tensor', [this, dim, start ?? null, end ?? null, step]); }
  select(dim: number, index: number): Tensor { return aten('aten::select', 'int', [this, dim, index]); }
  indexSelect(dim: number, index: Tensor): Tensor { return aten('aten::index_select', '', [this, dim, index]); }
  gather(dim: number, index: Tensor): Tensor { return aten('aten::gather', '', [this, dim, index]); }
  repeat(...times: number[]): Tensor { return aten('aten::repeat', '', [this, times]); }
  flip(...dims: number[]): Tensor { return aten('aten::flip', '', [this, dims]); }
  chunk(chunks: number, dim = 0): Tensor[] { return aten('aten::chunk', '', [this, chunks, dim]); }
  split(size: number, dim = 0): Tensor[] { return aten('aten::split', 'Tensor', [this, size, dim]); }

  // ---- elementwise ----
  add(o: Operand, alpha = 1): Tensor { return binary('add', this, o, alpha); }
  sub(o: Operand, alpha = 1): Tensor { return binary('sub', this, o, alpha); }
  mul(o: Operand): Tensor { return binary('mul', this, o); }
  div(o: Operand): Tensor { return binary('div', this, o); }
  pow(e: Operand): Tensor {
    return typeof e === 'number' ? aten('aten::pow', 'Tensor_Scalar', [this, e]) : aten('aten::pow', 'Tensor_Tensor', [this, e]);
  }
  maximum(o: Tensor): Tensor { return aten('aten::maximum', '', [this, o]); }
  minimum(o: Tensor): Tensor { return aten('aten::minimum', '', [this, o]); }
  neg(): Tensor { return aten('aten::neg', '', [this]); }
  abs(): Tensor { return aten('aten::abs', '', [this]); }
  exp(): Tensor { return aten('aten::exp', '', [this]); }
  log(): Tensor { return aten('aten::log', '', [this]); }
  sqrt(): Tensor { return aten('aten::sqrt', '', [this]); }
  rsqrt(): Tensor { return aten('aten::rsqrt', '', [this]); }
  square(): Tensor { return aten('aten::square', '', [this]); }
  sign(): Tensor { return aten('aten::sign', '', [this]); }
  floor(): Tensor { return aten('aten::floor', '', [this]); }
  round(): Tensor { return aten('aten::round', '', [this]); }
  reciprocal(): Tensor { return aten('aten::reciprocal', '', [this]); }
  clamp(min?: number, max?: number): Tensor { return aten('aten::clamp', '', [this, min ?? null, max ?? null]); }
  sigmoid(): Tensor { return aten('aten::sigmoid', '', [this]); }
  tanh(): Tensor { return aten('aten::tanh', '', [this]); }
  relu(): Tensor { return aten('aten::relu', '', [this]); }
  eq(o: Operand): Tensor { return compare('eq', this, o); }
  ne(o: Operand): Tensor { return compare('ne', this, o); }
  gt(o: Operand): Tensor { return compare('gt', this, o); }
  ge(o: Operand): Tensor { return compare('ge', this, o); }
  lt(o: Operand): Tensor { return compare('lt', this, o); }
  le(o: Operand): Tensor { return compare('le', this, o); }
  logicalNot(): Tensor { return aten('aten::logical_not', '', [this]); }
  isfinite(): Tensor { return aten('aten::isfinite', '', [this]); }
  /** Whether any element is true (nonzero), as a 0-d bool tensor. */
  any(): Tensor { return aten('aten::any', '', [this]); }
  all(): Tensor { return aten('aten::all', '', [this]); }
  /** where(cond, this, other) */
  where(cond: Tensor, other: Tensor): Tensor { return aten('aten::where', 'self', [cond, this, other]); }

  // ---- in place ----
  add_(o: Operand, alpha = 1): this { inplace('add_', this, o, alpha); return this; }
  sub_(o: Operand, alpha = 1): this { inplace('sub_', this, o, alpha); return this; }
  mul_(o: Operand): this { inplace('mul_', this, o); return this; }
  div_(o: Operand): this { inplace('div_', this, o); return this; }
  addcmul_(a: Tensor, b: Tensor, value = 1): this { atenVoid('aten::addcmul_', '', [this, a, b], { value }); return this; }
  addcdiv_(a: Tensor, b: Tensor, value = 1): this { atenVoid('aten::addcdiv_', '', [this, a, b], { value }); return this; }
  copy_(src: Tensor): this { atenVoid('aten::copy_', '', [this, src]); return this; }
  zero_(): this { atenVoid('aten::zero_', '', [this]); return this; }
  fill_(v: number): this { atenVoid('aten::fill_', 'Scalar', [this, v]); return this; }
  clamp_(min?: number, max?: number): this { atenVoid('aten::clamp_', '', [this, min ?? null, max ?? null]); return this; }
  uniform_(from = 0, to = 1): this { atenVoid('aten::uniform_', '', [this, from, to]); return this; }
  normal_(mean = 0, std = 1): this { atenVoid('aten::normal_', '', [this, mean, std]); return this; }
  exponential_(lambd = 1): this { atenVoid('aten::exponential_', '', [this, lambd]); return this; }

  // ---- reductions ----
  sum(dim?: number | number[], keepdim = false): Tensor {
    return dim === undefined ? aten('aten::sum', '', [this]) : aten('aten::sum', 'dim_IntList', [this, dim, keepdim]);
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return dim === undefined ? aten('aten::mean', '', [this]) : aten('aten::mean', 'dim', [this, dim, keepdim]);
  }
  /** Variance; unbiased (n − 1) by default, as in PyTorch. */
  var(dim?: number | number[], opts: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
    return aten('aten::var', 'correction', [this, dim ?? null], { correction: opts.unbiased === false ? 0 : 1, keepdim: opts.keepdim ?? false });
  }
  std(dim?: number | number[], opts: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
    return aten('aten::std', 'correction', [this, dim ?? null], { correction: opts.unbiased === false ? 0 : 1, keepdim: opts.keepdim ?? false });
  }
  max(): Tensor;
  max(dim: number, keepdim?: boolean): [Tensor, Tensor];
  max(dim?: number, keepdim = false): Tensor | [Tensor, Tensor] {
    return dim === undefined ? aten('aten::max', '', [this]) : aten('aten::max', 'dim', [this, dim, keepdim]);
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): [Tensor, Tensor];
  min(dim?: number, keepdim = false): Tensor | [Tensor, Tensor] {
    return dim === undefined ? aten('aten::min', '', [this]) : aten('aten::min', 'dim', [this, dim, keepdim]);
  }
  argmax(dim?: number, keepdim = false): Tensor { return aten('aten::argmax', '', [this, dim ?? null, keepdim]); }
  argmin(dim?: number, keepdim = false): Tensor { return aten('aten::argmin', '', [this, dim ?? null, keepdim]); }
  norm(p = 2): Tensor { return aten('aten::linalg_vector_norm', '', [this, p]); }
  logsumexp(dim: number, keepdim = false): Tensor { return aten('aten::logsumexp', '', [this, [dim], keepdim]); }

  // ---- products ----
  matmul(o: Tensor): Tensor { return aten('aten::matmul', '', [this, o]); }
  mm(o: Tensor): Tensor { return aten('aten::mm', '', [this, o]); }

  toString(): string {
    return this.isDisposed ? 'Tensor(disposed)' : `Tensor(shape=[${this.shape}], dtype=${this.dtype}, device=${this.device})`;
  }
}

const dtypeNames = new Set<string>(['uint8', 'int8', 'int16', 'int32', 'int64', 'float16', 'float32', 'float64', 'bool', 'bfloat16']);
function isDType(s: string): s is DType {
  return dtypeNames.has(s);
}

function binary(name: string, a: Tensor, o: Operand, alpha?: number): Tensor {
  const kw = alpha === undefined || alpha === 1 ? undefined : { alpha };
  return typeof o === 'number' ? aten(`aten::${name}`, 'Scalar', [a, o], kw) : aten(`aten::${name}`, 'Tensor', [a, o], kw);
}

function inplace(name: string, a: Tensor, o: Operand, alpha?: number): void {
  const kw = alpha === undefined || alpha === 1 ? undefined : { alpha };
  atenVoid(`aten::${name}`, typeof o === 'number' ? 'Scalar' : 'Tensor', [a, o], kw);
}

function compare(name: string, a: Tensor, o: Operand): Tensor {
  return aten(`aten::${name}`, typeof o === 'number' ? 'Scalar' : 'Tensor', [a, o]);
}

export function liveTensors(): number {
  return native.liveTensors();
}
