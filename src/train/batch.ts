/** Loader batches (plain typed arrays) as tensors for the model. */
import { Tensor } from '../engine/tensor';
import { fromTyped } from '../engine/creation';
import type { Batch } from '../data/loader';

export function inputsOf(b: Batch): Tensor {
  return fromTyped(b.x, 'float32', b.shape);
}

/** Class indices as int64, which cross-entropy wants. */
export function targetsOf(b: Batch): Tensor {
  return fromTyped(BigInt64Array.from(b.y, (v) => BigInt(v)), 'int64', [b.y.length]);
}
