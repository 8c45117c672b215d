/**
 * The arithmetic precision of a run: fp32, or bf16 / fp16 autocast (mixed precision: convolutions
 * and matrix products in the lower precision, parameters, gradients and optimizer state in fp32).
 */
import { InputError } from '../errors';
import { native } from './native';
import { DType, dtypeCode } from './dtype';
import { deviceType } from './device';
import type { Tensor } from './tensor';

export type Precision = 'fp32' | 'bf16' | 'fp16';
export const PRECISIONS: readonly Precision[] = ['fp32', 'bf16', 'fp16'];

const AUTOCAST_DTYPE: Record<Exclude<Precision, 'fp32'>, DType> = { bf16: 'bfloat16', fp16: 'float16' };

/** Checks a precision against the resolved device it will run on; one InputError line naming the reason. */
export function checkPrecision(precision: string, device: string, label = 'precision'): Precision {
  if (!PRECISIONS.includes(precision as Precision)) throw new InputError(`${label}: expected ${PRECISIONS.join(', ')}, got '${precision}'`);
  // CPU autocast has no fp16 kernels worth having, and fp16 needs loss scaling, which is CUDA's.
  if (precision === 'fp16' && deviceType(device) === 'cpu') {
    throw new InputError(`${label} fp16: fp16 needs CUDA (float16 autocast with loss scaling runs on GPUs); on the CPU use bf16 or fp32`);
  }
  return precision as Precision;
}

/**
 * Runs fn under autocast of the device's type in dtype, then restores that device type's autocast
 * exactly as it was (on or off, and its dtype), so the code after it computes as before.
 */
export function autocastOn<T>(device: string, dtype: DType, fn: () => T): T {
  const type = deviceType(device);
  const [wasEnabled, wasDtype] = native.autocastState(type, true, dtypeCode(dtype));
  try {
    return fn();
  } finally {
    native.autocastState(type, wasEnabled, wasDtype);
  }
}

/** Runs fn in the run's precision: fp32 as it is, bf16 / fp16 under autocast (see autocastOn). */
export function inPrecision<T>(precision: Precision, device: string, fn: () => T): T {
  return precision === 'fp32' ? fn() : autocastOn(device, AUTOCAST_DTYPE[precision], fn);
}

/**
 * t in float32 when it is a 16-bit float (as autocast leaves a linear layer's output), else t itself:
 * decisions taken by thresholding must not flip on bf16 rounding. float64 stays float64.
 */
export function atLeastFloat32(t: Tensor): Tensor {
  const d = t.dtype;
  return d === 'bfloat16' || d === 'float16' ? t.to('float32') : t;
}
