import { Tensor } from '../engine/tensor';
import { empty } from '../engine/creation';
import { Module } from './module';
import { Parameter } from './parameter';
import { conv2d } from './functional';
import { fans, kaimingUniform_, uniform_ } from './init';

export interface Conv2dConfig {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
  bias?: boolean;
}

export class Conv2d extends Module {
  weight: Parameter;
  bias: Parameter | null;
  readonly stride: number;
  readonly padding: number;
  readonly dilation: number;
  readonly groups: number;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number, c: Conv2dConfig = {}) {
    super();
    this.stride = c.stride ?? 1;
    this.padding = c.padding ?? 0;
    this.dilation = c.dilation ?? 1;
    this.groups = c.groups ?? 1;
    if (inChannels % this.groups || outChannels % this.groups) {
      throw new Error(`Conv2d: channels ${inChannels}->${outChannels} not divisible by groups ${this.groups}`);
    }
    // PyTorch's default init, so a model built here starts from the same distribution as there.
    this.weight = new Parameter(kaimingUniform_(empty([outChannels, inChannels / this.groups, kernelSize, kernelSize]), { a: Math.sqrt(5) }));
    if (c.bias ?? true) {
      const bound = 1 / Math.sqrt(fans(this.weight).fanIn);
      this.bias = new Parameter(uniform_(empty([outChannels]), -bound, bound));
    } else {
      this.bias = null;
    }
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }
}
