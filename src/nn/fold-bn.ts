import { Tensor } from '../engine/tensor';
import { noGrad } from '../engine/autograd';
import { keep } from '../engine/scope';
import { Module } from './module';
import { Conv2d } from './conv';
import { BatchNorm2d } from './batchnorm';
import { Identity } from './basic';

/** A convolution and the batch norm after it, as a backbone's convBns() lists them (models/backbone.ts's ConvBn). */
export interface FoldablePair {
  conv: Module;
  bn: Module;
  replace(conv: Module, bn: Module): void;
}

/** A model that lists its conv/bn pairs (every registry backbone). */
export interface HasConvBns {
  convBns(): FoldablePair[];
}

function hasConvBns(m: unknown): m is HasConvBns {
  return typeof (m as Partial<HasConvBns>).convBns === 'function';
}

/**
 * The pairs of `model` that can be folded: a Conv2d computing conv2d of its weight and bias (its
 * forward is Conv2d's, so a subclass doing more, such as a gated conv, is left alone) followed by a
 * BatchNorm2d. A backbone whose pairs were replaced (a method's gated convs) lists none: convBns()
 * refuses replaced layers.
 */
function foldablePairs(model: Module): FoldablePair[] {
  if (!hasConvBns(model)) return [];
  let pairs: FoldablePair[];
  try {
    pairs = model.convBns();
  } catch {
    return [];
  }
  return pairs.filter((p) => p.conv instanceof Conv2d && p.conv.forward === Conv2d.prototype.forward && p.bn instanceof BatchNorm2d);
}

/**
 * A copy of `conv` (same class and settings) computing
 * conv(x)·s + (β − μ·s), s = γ/√(σ² + ε): the BN's affine map with its running statistics moved
 * into the weights. Not a Module registered anywhere: it lives only while a folded pass runs.
 */
function foldedConv(conv: Conv2d, bn: BatchNorm2d): Conv2d {
  return noGrad(() => {
    const w = conv.weight;
    const scale = bn.running_var.add(bn.eps).rsqrt();
    const s = bn.weight ? scale.mul(bn.weight) : scale;
    const shift = bn.running_mean.mul(s).neg();
    const bias = bn.bias ? shift.add(bn.bias) : shift;
    const weight = w.mul(s.reshape(-1, 1, 1, 1));
    const fullBias = conv.bias ? bias.add(conv.bias.mul(s)) : bias;
    for (const t of [scale, s, shift, bias]) if (t !== fullBias) t.dispose();
    const copy = Object.create(Object.getPrototypeOf(conv)) as Conv2d;
    Object.assign(copy, conv, { weight: keep(weight), bias: keep(fullBias), training: false });
    return copy;
  });
}

/**
 * Runs `fn` (an inference pass) with every conv+BN pair of `model` computed as one convolution
 * with the BN folded into its weights, then puts the original layers back, also when fn throws.
 * Evaluation only: BN in training mode normalises with the batch's statistics and updates the
 * running ones, which a fold cannot do, so a model in training mode is refused. The model's
 * parameters, buffers and state dict are never changed (the folded tensors are separate and freed
 * after fn). Logits differ from the unfolded pass by rounding only (≤ 1e-5 on our backbones).
 */
export function withFoldedBatchNorm<T>(model: Module, fn: () => T): T {
  const pairs = foldablePairs(model);
  if (pairs.some((p) => p.bn.training || p.conv.training)) {
    throw new Error('withFoldedBatchNorm: the model is in training mode; folding BN is for evaluation (call eval() first)');
  }
  const folded: Conv2d[] = [];
  try {
    for (const p of pairs) {
      const c = foldedConv(p.conv as Conv2d, p.bn as BatchNorm2d);
      folded.push(c);
      p.replace(c, new Identity());
    }
    const result = fn();
    if (result instanceof Promise) throw new Error('withFoldedBatchNorm: fn must be synchronous');
    return result;
  } finally {
    pairs.forEach((p, i) => { if (i < folded.length) p.replace(p.conv, p.bn); });
    for (const c of folded) {
      (c.weight as Tensor).dispose();
      (c.bias as Tensor | null)?.dispose();
    }
  }
}
