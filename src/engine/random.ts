import { native } from './native';
import { DType, dtypeCode } from './dtype';
import { aten, Tensor } from './tensor';

/** Seeds libtorch's default generators (every device), as torch.manual_seed does. */
export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}

interface Options {
  dtype?: DType;
  device?: string;
}

const kw = (o: Options) => ({ dtype: dtypeCode(o.dtype ?? 'float32'), device: o.device ?? null });

/** Uniform on [0, 1). */
export const rand = (shape: number[], opts: Options = {}): Tensor => aten('aten::rand', '', [shape], kw(opts));
/** Standard normal. */
export const randn = (shape: number[], opts: Options = {}): Tensor => aten('aten::randn', '', [shape], kw(opts));
/** Integers uniform on [low, high). */
export function randint(low: number, high: number, shape: number[], opts: Options = {}): Tensor {
  return aten('aten::randint', 'low', [low, high, shape], { dtype: dtypeCode(opts.dtype ?? 'int64'), device: opts.device ?? null });
}
/** A random permutation of 0..n-1. */
export const randperm = (n: number): Tensor => aten('aten::randperm', '', [n], { dtype: dtypeCode('int64') });

/** Standard Gumbel(0, 1) noise: −log(E) with E ~ Exponential(1), which never takes log(0). */
export function gumbel(shape: number[], opts: Options = {}): Tensor {
  const e = aten('aten::empty', 'memory_format', [shape], kw(opts)) as Tensor;
  e.exponential_(1);
  const logE = e.log();
  e.dispose();
  const g = logE.neg();
  logE.dispose();
  return g;
}
