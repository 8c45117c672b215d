import { Tensor } from '../../src/engine/tensor';
import { tidy } from '../../src/engine/scope';
import { SGD } from '../../src/optim/sgd';
import { MethodModel } from '../../src/methods/method';
import { noGrad } from '../../src/engine/autograd';
import { manualSeed } from '../../src/engine/random';
import { buildModel } from '../../src/models/registry';
import { BatchNorm2d } from '../../src/nn/batchnorm';
import { Module } from '../../src/nn/module';

/**
 * A resnet20 standing in for a pretrained one: random weights plus non-trivial BN parameters and
 * running statistics, so that "BN initialised from pretrained" is visible in the numbers.
 */
export function fakePretrained(seed = 0, classes = 10) {
  manualSeed(seed);
  const m = buildModel('resnet20', classes);
  noGrad(() => {
    for (const mod of m.modules()) {
      if (mod instanceof BatchNorm2d) {
        mod.weight!.uniform_(0.5, 1.5);
        mod.bias!.uniform_(-0.2, 0.2);
        mod.running_mean.uniform_(-0.3, 0.3);
        mod.running_var.uniform_(0.5, 2);
      }
    }
  });
  return m;
}

/** Copies of every parameter and buffer by name (plain arrays). */
export function snapshot(m: Module): Map<string, number[]> {
  return new Map([...m.stateDict()].map(([k, t]) => [k, t.toArray()]));
}

export function maxAbsDiff(a: Tensor, b: Tensor): number {
  return noGrad(() => {
    const d = a.sub(b).abs().max();
    const v = d.item();
    d.dispose();
    return v;
  });
}

/** One training step of a method model; returns the loss. */
export function step(m: MethodModel, opt: SGD, x: Tensor, y: Tensor): number {
  return tidy(() => {
    opt.zeroGrad();
    const loss = m.loss(m.forward(x), y);
    loss.backward();
    opt.step();
    return loss.item();
  });
}
