import { aten, atenVoid, Tensor } from '../engine/tensor';
import { newEmpty } from '../engine/creation';
import { noGrad } from '../engine/autograd';
import { inBatchShare, perExample } from '../engine/random';

type Pair = number | [number, number];

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}

export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, o: Conv2dOptions = {}): Tensor {
  return aten('aten::conv2d', '', [x, weight, bias, o.stride ?? 1, o.padding ?? 0, o.dilation ?? 1, o.groups ?? 1]);
}

export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  return aten('aten::linear', '', [x, weight, bias]);
}

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
}

/** Batch normalisation; in training the running statistics are updated in place. */
export function batchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  weight: Tensor | null, bias: Tensor | null, o: BatchNormOptions): Tensor {
  return aten('aten::batch_norm', '', [x, weight, bias, runningMean, runningVar, o.training, o.momentum ?? 0.1, o.eps ?? 1e-5, true]);
}

export function maxPool2d(x: Tensor, kernel: Pair, o: { stride?: Pair; padding?: Pair; dilation?: Pair; ceilMode?: boolean } = {}): Tensor {
  return aten('aten::max_pool2d', '', [x, kernel, o.stride ?? kernel, o.padding ?? 0, o.dilation ?? 1, o.ceilMode ?? false]);
}

export function avgPool2d(x: Tensor, kernel: Pair, o: { stride?: Pair; padding?: Pair; ceilMode?: boolean; countIncludePad?: boolean } = {}): Tensor {
  return aten('aten::avg_pool2d', '', [x, kernel, o.stride ?? kernel, o.padding ?? 0, o.ceilMode ?? false, o.countIncludePad ?? true]);
}

export function adaptiveAvgPool2d(x: Tensor, size: Pair): Tensor {
  return aten('aten::adaptive_avg_pool2d', '', [x, size]);
}

/** Global average pooling to [N, C]. */
export function globalAvgPool(x: Tensor): Tensor {
  return aten('aten::mean', 'dim', [x, [2, 3], false]);
}

export const relu = (x: Tensor): Tensor => aten('aten::relu', '', [x]);
export const relu_ = (x: Tensor): Tensor => { aten('aten::relu_', '', [x]).dispose(); return x; };
export const relu6 = (x: Tensor): Tensor => aten('aten::hardtanh', '', [x, 0, 6]);
export const sigmoid = (x: Tensor): Tensor => aten('aten::sigmoid', '', [x]);
export const tanh = (x: Tensor): Tensor => aten('aten::tanh', '', [x]);
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor => aten('aten::gelu', '', [x], { approximate });
export const softmax = (x: Tensor, dim: number): Tensor => aten('aten::softmax', 'int', [x, dim]);
export const logSoftmax = (x: Tensor, dim: number): Tensor => aten('aten::log_softmax', 'int', [x, dim]);

/**
 * Dropout over x [N, ...], N the batch. Its mask is per example (perExample): in a forward pass
 * over a data-parallel rank's share of a global batch, the mask is the rows of the global batch's,
 * made as aten::dropout makes it on the CPU (bernoulli(1 − p) / (1 − p), then x times it), so a rank
 * drops what one process with the whole batch drops.
 */
export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  if (!training || p === 0 || p === 1 || !x.numel || !inBatchShare()) return aten('aten::dropout', '', [x, p, training]);
  const mask = noGrad(() => perExample(x.shape, 0, (s) => {
    const m = newEmpty(x, s);
    atenVoid('aten::bernoulli_', 'float', [m, 1 - p]);
    return m.div_(1 - p);
  }));
  return x.mul(mask);
}

const reductions = { none: 0, mean: 1, sum: 2 } as const;

/** Cross-entropy of logits [N, C] against class indices [N] (int64), with optional label smoothing. */
export function crossEntropy(logits: Tensor, target: Tensor, o: { labelSmoothing?: number; reduction?: keyof typeof reductions } = {}): Tensor {
  return aten('aten::cross_entropy_loss', '', [logits, target, null, reductions[o.reduction ?? 'mean'], -100, o.labelSmoothing ?? 0]);
}

export function mseLoss(x: Tensor, y: Tensor, reduction: keyof typeof reductions = 'mean'): Tensor {
  return aten('aten::mse_loss', '', [x, y, reductions[reduction]]);
}

/** One step of an LSTM cell; weights as in torch.nn.LSTMCell (gates i, f, g, o). */
export function lstmCell(x: Tensor, h: Tensor, c: Tensor, wIh: Tensor, wHh: Tensor, bIh: Tensor | null, bHh: Tensor | null): [Tensor, Tensor] {
  return aten('aten::lstm_cell', '', [x, [h, c], wIh, wHh, bIh, bHh]);
}

/** Reduced SVD: A = U diag(S) Vh. */
export function svd(a: Tensor): [Tensor, Tensor, Tensor] {
  return aten('aten::linalg_svd', '', [a, false]);
}

export function svdvals(a: Tensor): Tensor {
  return aten('aten::linalg_svdvals', '', [a]);
}

export function oneHot(indices: Tensor, classes: number): Tensor {
  return aten('aten::one_hot', '', [indices, classes]);
}
