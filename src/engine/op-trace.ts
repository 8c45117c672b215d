import { native, OpRecord } from './native';

export type { OpRecord } from './native';

/**
 * Runs fn and returns what it returned with every op libtorch dispatched meanwhile, in call order:
 * nested ops, autocast's casts and backward nodes included, in the format of PyTorch's profiler
 * with record_shapes (bench/step-trace.py records the same step there), so two stacks can be
 * compared op by op. Costs nothing outside a trace: the callback exists only while fn runs.
 */
export function traceOps<T>(fn: () => T): { result: T; ops: OpRecord[] } {
  native.opTraceStart();
  let result: T;
  try {
    result = fn();
  } catch (e) {
    native.opTraceStop();
    throw e;
  }
  return { result, ops: native.opTraceStop() };
}

/** How many times each op name occurs, optionally only ops whose inputs match keep. */
export function countOps(ops: OpRecord[], keep: (r: OpRecord) => boolean = () => true): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of ops) if (keep(r)) counts.set(r.name, (counts.get(r.name) ?? 0) + 1);
  return counts;
}
