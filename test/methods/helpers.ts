import { Tensor } from '../../src/engine/tensor';
import { tidy } from '../../src/engine/scope';
import { SGD } from '../../src/optim/sgd';
import { MethodModel } from '../../src/methods/method';
import type { AdaFilterModel } from '../../src/methods/adafilter';
import { noGrad } from '../../src/engine/autograd';
import { manualSeed, randn } from '../../src/engine/random';
import { buildModel } from '../../src/models/registry';
import { BatchNorm2d } from '../../src/nn/batchnorm';
import { Module } from '../../src/nn/module';

/**
 * A resnet20 standing in for a pretrained one: random weights plus non-trivial BN parameters and
 * running statistics, so that "BN initialised from pretrained" is visible in the numbers.
 */
export function fakePretrained(seed = 0, classes = 10) {
  manualSeed(seed);
  return randomizeBatchNorm(buildModel('resnet20', classes));
}

/** Gives every BN of m non-trivial affine parameters and running statistics, as pretraining would. */
export function randomizeBatchNorm<M extends Module>(m: M): M {
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

/** Names of parameters with a gradient after one backward pass. */
export function withGrad(m: MethodModel, x: Tensor, y: Tensor): Set<string> {
  for (const p of m.parameters()) p.grad = null;
  tidy(() => m.loss(m.run(x), y).backward());
  const out = new Set(m.namedParameters().filter(([, p]) => p.grad !== null).map(([k]) => k));
  for (const p of m.parameters()) p.grad = null;
  return out;
}

/** Names of parameters in the method's optimiser groups. */
export function trainedNames(m: MethodModel, lrs: { lr: number; gateLr?: number } = { lr: 0.1 }): Set<string> {
  const trained = new Set(m.paramGroups(lrs).flatMap((g) => g.params));
  return new Set(m.namedParameters().filter(([, p]) => trained.has(p)).map(([k]) => k));
}

/** One training-mode forward and backward with Gumbel noise from `seed`; returns the detached logits. */
export function trainPass(m: MethodModel, x: Tensor, y: Tensor, seed: number): Tensor {
  m.train();
  manualSeed(seed);
  return tidy(() => {
    const pass = m.run(x);
    m.loss(pass, y).backward();
    return pass.logits.detach();
  });
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
    const loss = m.loss(m.run(x), y);
    loss.backward();
    opt.step();
    return loss.item();
  });
}

/** Makes F, BN_F (and the single BN) differ from S / BN_S, so the forced-gate checks mean something. */
export function perturb(m: AdaFilterModel): void {
  noGrad(() => {
    for (const g of m.gated) {
      g.weight_f.add_(tidy(() => randn(g.weight_f.shape).mul(0.05)));
      for (const bn of [g.norm.bn_f, g.norm.bn]) {
        if (!bn) continue;
        bn.weight!.add_(0.1);
        bn.running_mean.add_(0.05);
        bn.running_var.mul_(1.2);
      }
    }
  });
}
