import { native } from './native';
import { DType } from './dtype';
import { autocastOn } from './precision';

/** Intra-op threads of libtorch. It starts with 1 on some VMs, so set it explicitly. */
export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}
export function torchVersion(): string {
  return native.version();
}
export function cudaDeviceCount(): number {
  return native.cudaDeviceCount();
}
export function parallelInfo(): string {
  return native.parallelInfo();
}

/** Runs fn under CPU autocast (bf16 by default): matmuls and convolutions in lower precision. */
export function autocast<T>(fn: () => T, dtype: DType = 'bfloat16'): T {
  return autocastOn('cpu', dtype, fn);
}
