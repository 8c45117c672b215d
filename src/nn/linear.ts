import { Tensor } from '../engine/tensor';
import { empty } from '../engine/creation';
import { Module } from './module';
import { Parameter } from './parameter';
import { linear } from './functional';
import { kaimingUniform_, uniform_ } from './init';

export class Linear extends Module {
  weight: Parameter;
  bias: Parameter | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, bias = true) {
    super();
    this.weight = new Parameter(kaimingUniform_(empty([outFeatures, inFeatures]), { a: Math.sqrt(5) }));
    const bound = 1 / Math.sqrt(inFeatures);
    this.bias = bias ? new Parameter(uniform_(empty([outFeatures]), -bound, bound)) : null;
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}
