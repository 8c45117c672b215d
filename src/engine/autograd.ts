import { native } from './native';
import { Tensor } from './tensor';

/** Runs fn with gradient recording off (torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  const previous = native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(previous);
  }
}

/** Runs fn with gradient recording on, e.g. inside noGrad. */
export function enableGrad<T>(fn: () => T): T {
  const previous = native.setGradEnabled(true);
  try {
    return fn();
  } finally {
    native.setGradEnabled(previous);
  }
}

export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

/** Gradients of outputs with respect to inputs, without touching .grad (torch.autograd.grad). */
export function grad(outputs: Tensor[], inputs: Tensor[], opts: {
  gradOutputs?: Tensor[]; retainGraph?: boolean; createGraph?: boolean; allowUnused?: boolean;
} = {}): (Tensor | null)[] {
  const r = native.grad(outputs.map((t) => t.handle), inputs.map((t) => t.handle),
    opts.gradOutputs ? opts.gradOutputs.map((t) => t.handle) : null, opts.retainGraph, opts.createGraph ?? false, opts.allowUnused ?? false);
  return r.map((h) => (h === null ? null : new Tensor(h)));
}
