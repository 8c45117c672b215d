/** Loader batches (plain typed arrays) as tensors for the model. */
import { Tensor } from '../engine/tensor';
import { fromTyped } from '../engine/creation';
import { onDevice } from '../engine/device';
import type { Batch } from '../data/loader';

/** The images on the model's device (default the CPU). */
export function inputsOf(b: Batch, device = 'cpu'): Tensor {
  return onDevice(fromTyped(b.x, 'float32', b.shape), device);
}

/** Class indices as int64, which cross-entropy wants, on the model's device. */
export function targetsOf(b: Batch, device = 'cpu'): Tensor {
  return onDevice(fromTyped(BigInt64Array.from(b.y, (v) => BigInt(v)), 'int64', [b.y.length]), device);
}
