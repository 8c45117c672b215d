import { native } from './native';
import { DType, dtypeCode } from './dtype';
import { aten, Tensor } from './tensor';
import { tensor } from './creation';

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

/**
 * The rows of a global batch that this process's forward pass holds: rows[i] is the global index
 * of local example i (a data-parallel rank's DistributedSampler share).
 */
export interface BatchRows {
  global: number;
  rows: number[];
}

let batchRows: BatchRows | null = null;

/**
 * Runs a forward pass over a share of a global batch so that its per-example random draws
 * (perExample: Gumbel noise, dropout masks) are the global batch's: every rank seeds the same
 * generator, draws for all `global` examples and keeps its own rows, so a data-parallel run's noise
 * does not depend on the world size and the generators stay in step across ranks.
 */
export function withBatchRows<T>(r: BatchRows, run: () => T): T {
  const outer = batchRows;
  batchRows = r;
  try {
    return run();
  } finally {
    batchRows = outer;
  }
}

/** Whether a forward pass runs under withBatchRows (a data-parallel rank's share of its batch). */
export const inBatchShare = (): boolean => batchRows !== null;

/**
 * A random draw with one slice per example along `dim` (the batch dimension of `shape`): plain
 * draw(shape) in a process that holds its whole batch; under withBatchRows, draw for the global
 * batch and this process's rows of it. draw must make a fresh tensor of the shape it is given.
 */
export function perExample(shape: number[], dim: number, draw: (shape: number[]) => Tensor): Tensor {
  const r = batchRows;
  if (r === null) return draw(shape);
  if (shape[dim] !== r.rows.length) {
    throw new Error(`internal: a per-example draw over ${shape[dim]} examples in a pass that holds ${r.rows.length} of ${r.global}`);
  }
  const all = draw(shape.map((s, i) => (i === dim ? r.global : s)));
  const index = tensor(r.rows, { dtype: 'int64', device: all.device });
  try {
    return all.indexSelect(dim, index);
  } finally {
    index.dispose();
    all.dispose();
  }
}
