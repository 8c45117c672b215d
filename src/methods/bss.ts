import { Tensor } from '../engine/tensor';
import { svdvals } from '../nn/functional';
import { Module } from '../nn/module';
import { Parameter } from '../nn/parameter';
import { MethodModel, Method, ParamRole, backboneAndHead, resolveOptions } from './method';
import type { ForwardPass } from './forward-pass';

export interface BssOptions {
  /** Number of smallest singular values penalised. */
  k: number;
  /** Weight of the penalty. */
  eta: number;
}

/** eta · Σ of the k smallest squared singular values of the feature matrix [N, D] (Chen et al., NeurIPS 2019). */
export function bssPenalty(features: Tensor, k: number, eta: number): Tensor {
  const s = svdvals(features); // descending, min(N, D) values
  const n = s.size(0);
  const kk = Math.min(k, n);
  return s.narrow(0, n - kk, kk).square().sum().mul(eta);
}

/** Fine-tuning with Batch Spectral Shrinkage on the pooled features of each batch. */
export class BssModel extends MethodModel {
  constructor(backbone: Module, numClasses: number, readonly options: BssOptions) {
    super('bss', backbone, numClasses);
    this.applyTrainability();
  }

  trainableParameters(): [Parameter, ParamRole][] {
    return backboneAndHead(this);
  }

  override extraLoss(pass: ForwardPass): Tensor | null {
    if (!this.training) return null;
    if (!pass.features) throw new Error('bss: the penalty needs the pass\'s features (a pass from cached logits has none)');
    return bssPenalty(pass.features, this.options.k, this.options.eta);
  }
}

export const bssDefaults: BssOptions = { k: 1, eta: 0.001 };

export const bss: Method<BssOptions> = {
  name: 'bss',
  evaluatesAsBackbone: true,
  description: 'finetune + eta·Σ of the k smallest squared singular values of the batch feature matrix',
  defaults: bssDefaults,
  apply(backbone, numClasses, options) {
    return new BssModel(backbone, numClasses, resolveOptions('bss', bssDefaults, options));
  },
};
