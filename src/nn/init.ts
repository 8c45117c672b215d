import { Tensor } from '../engine/tensor';
import { noGrad } from '../engine/autograd';

/** fan_in and fan_out of a Linear [out, in] or Conv [out, in/groups, kh, kw] weight. */
export function fans(w: Tensor): { fanIn: number; fanOut: number } {
  const s = w.shape;
  if (s.length < 2) throw new Error(`init: need a weight with at least 2 dimensions, got [${s}]`);
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: s[1] * receptive, fanOut: s[0] * receptive };
}

type Mode = 'fan_in' | 'fan_out';
const gains = { relu: Math.SQRT2, linear: 1, tanh: 5 / 3, sigmoid: 1 } as const;
type Nonlinearity = keyof typeof gains | 'leaky_relu';

function gain(nl: Nonlinearity, a = 0): number {
  return nl === 'leaky_relu' ? Math.sqrt(2 / (1 + a * a)) : gains[nl];
}

export function kaimingNormal_(w: Tensor, o: { mode?: Mode; nonlinearity?: Nonlinearity; a?: number } = {}): Tensor {
  const f = fans(w);
  const std = gain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0) / Math.sqrt(o.mode === 'fan_out' ? f.fanOut : f.fanIn);
  return noGrad(() => w.normal_(0, std));
}

export function kaimingUniform_(w: Tensor, o: { mode?: Mode; nonlinearity?: Nonlinearity; a?: number } = {}): Tensor {
  const f = fans(w);
  const bound = Math.sqrt(3) * gain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0) / Math.sqrt(o.mode === 'fan_out' ? f.fanOut : f.fanIn);
  return noGrad(() => w.uniform_(-bound, bound));
}

export function xavierUniform_(w: Tensor, g = 1): Tensor {
  const f = fans(w);
  const bound = g * Math.sqrt(6 / (f.fanIn + f.fanOut));
  return noGrad(() => w.uniform_(-bound, bound));
}

export const uniform_ = (t: Tensor, a: number, b: number): Tensor => noGrad(() => t.uniform_(a, b));
export const normal_ = (t: Tensor, mean: number, std: number): Tensor => noGrad(() => t.normal_(mean, std));
export const constant_ = (t: Tensor, v: number): Tensor => noGrad(() => t.fill_(v));
export const zeros_ = (t: Tensor): Tensor => constant_(t, 0);
export const ones_ = (t: Tensor): Tensor => constant_(t, 1);
