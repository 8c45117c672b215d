import { Tensor } from '../engine/tensor';
import { noGrad } from '../engine/autograd';
import { keep } from '../engine/scope';
import { Module } from '../nn/module';
import { Parameter } from '../nn/parameter';
import { MethodModel, Method, ParamRole, backboneAndHead, resolveOptions } from './method';

export interface L2spOptions {
  /** Weight of α/2·‖w − w0‖² over the backbone's pretrained parameters. */
  alpha: number;
  /** Weight of β/2·‖θ‖² over the new head's parameters. */
  beta: number;
  /** 'all' backbone parameters (BN affine included) or only conv 'weights'. */
  include: 'all' | 'weights';
}

/** α/2 Σ ‖w − w0‖² + β/2 Σ ‖θ‖² (Li, Grandvalet, Davoine, ICML 2018). */
export function l2spPenalty(pairs: [Tensor, Tensor][], head: Tensor[], alpha: number, beta: number): Tensor {
  let total: Tensor | null = null;
  const add = (t: Tensor, scale: number) => {
    const term = t.square().sum().mul(scale);
    total = total ? total.add(term) : term;
  };
  for (const [w, w0] of pairs) add(w.sub(w0), alpha / 2);
  for (const h of head) add(h, beta / 2);
  if (!total) throw new Error('l2spPenalty: no parameters');
  return total;
}

/**
 * Fine-tuning with the L2-SP penalty in the loss. It replaces weight decay: the optimiser groups of
 * this method have weight decay 0 (the head's β term is its decay).
 */
export class L2spModel extends MethodModel {
  /** Starting point w0 of every regularised backbone parameter (copies, outside every scope). */
  readonly reference: [Parameter, Tensor][];

  constructor(backbone: Module, numClasses: number, readonly options: L2spOptions) {
    super('l2sp', backbone, numClasses);
    this.applyTrainability();
    const head = new Set(this.head.parameters());
    this.reference = noGrad(() => this.backbone.parameters()
      .filter((p) => !head.has(p) && (options.include === 'all' || p.ndim > 1))
      .map((p): [Parameter, Tensor] => [p, keep(p.detach().clone())]));
  }

  trainableParameters(): [Parameter, ParamRole][] {
    return backboneAndHead(this);
  }

  protected override weightDecayFor(): number {
    return 0;
  }

  override extraLoss(): Tensor {
    return l2spPenalty(this.reference, this.head.parameters(), this.options.alpha, this.options.beta);
  }

  override dispose(): void {
    super.dispose();
    for (const [, t] of this.reference) t.dispose();
  }
}

export const l2spDefaults: L2spOptions = { alpha: 0.01, beta: 0.01, include: 'all' };

export const l2sp: Method<L2spOptions> = {
  name: 'l2sp',
  evaluatesAsBackbone: true,
  description: 'finetune + alpha/2·‖w − w0‖² on the backbone + beta/2·‖head‖² (no weight decay)',
  defaults: l2spDefaults,
  apply(backbone, numClasses, options) {
    return new L2spModel(backbone, numClasses, resolveOptions('l2sp', l2spDefaults, options));
  },
};
