import { Tensor } from '../src/engine/tensor';
import { noGrad } from '../src/engine/autograd';
import { tidy } from '../src/engine/scope';
import { Conv2d } from '../src/nn/conv';
import { Linear } from '../src/nn/linear';
import { Module } from '../src/nn/module';

/**
 * FLOPs (2 × multiply-adds) of one forward pass over x, counting convolutions and linear layers,
 * found by watching their forward calls once.
 */
export function forwardFlops(model: Module, x: Tensor): number {
  let macs = 0;
  const convForward = Conv2d.prototype.forward;
  const linearForward = Linear.prototype.forward;
  Conv2d.prototype.forward = function (this: Conv2d, input: Tensor) {
    const out = convForward.call(this, input);
    macs += out.numel * (this.inChannels / this.groups) * this.kernelSize * this.kernelSize;
    return out;
  };
  Linear.prototype.forward = function (this: Linear, input: Tensor) {
    const out = linearForward.call(this, input);
    macs += out.numel * this.inFeatures;
    return out;
  };
  try {
    const wasTraining = model.training;
    model.eval();
    noGrad(() => tidy(() => { model.forward(x); }));
    model.train(wasTraining);
  } finally {
    Conv2d.prototype.forward = convForward;
    Linear.prototype.forward = linearForward;
  }
  return 2 * macs;
}
