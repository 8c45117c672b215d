import { Tensor } from '../engine/tensor';
import { ones, zeros } from '../engine/creation';
import { noGrad } from '../engine/autograd';
import { Module } from './module';
import { Buffer, Parameter } from './parameter';
import { batchNorm } from './functional';

export interface BatchNormConfig {
  eps?: number;
  momentum?: number;
  affine?: boolean;
}

/** BatchNorm2d with PyTorch's names (weight, bias, running_mean, running_var, num_batches_tracked). */
export class BatchNorm2d extends Module {
  weight: Parameter | null;
  bias: Parameter | null;
  running_mean: Buffer;
  running_var: Buffer;
  num_batches_tracked: Buffer;
  readonly eps: number;
  /** Mutable: precise BN (train/precise-bn.ts) averages batches by setting it per batch. */
  momentum: number;

  constructor(readonly numFeatures: number, c: BatchNormConfig = {}) {
    super();
    this.eps = c.eps ?? 1e-5;
    this.momentum = c.momentum ?? 0.1;
    const affine = c.affine ?? true;
    this.weight = affine ? new Parameter(ones([numFeatures])) : null;
    this.bias = affine ? new Parameter(zeros([numFeatures])) : null;
    this.running_mean = new Buffer(zeros([numFeatures]));
    this.running_var = new Buffer(ones([numFeatures]));
    this.num_batches_tracked = new Buffer(zeros([], { dtype: 'int64' }));
  }

  forward(x: Tensor): Tensor {
    if (this.training) noGrad(() => this.num_batches_tracked.add_(1));
    return batchNorm(x, this.running_mean, this.running_var, this.weight, this.bias,
      { training: this.training, momentum: this.momentum, eps: this.eps });
  }
}

/**
 * A BatchNorm2d that always normalises with its running statistics and never updates them, in
 * training too (torchvision's FrozenBatchNorm2d; same parameter names, so state dicts load).
 */
export class FrozenBatchNorm2d extends BatchNorm2d {
  override forward(x: Tensor): Tensor {
    return batchNorm(x, this.running_mean, this.running_var, this.weight, this.bias,
      { training: false, momentum: this.momentum, eps: this.eps });
  }
}
