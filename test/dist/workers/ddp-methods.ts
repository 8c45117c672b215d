/**
 * The float32 training of test/dist/ddp-methods.test.ts: a CNN with BN, and AdaFilter on a
 * resnet20 (gated, some paths skipped per batch), a few SGD steps on random images. Workers train
 * under DDP on their micro-batch; the test plays both ranks in one process.
 */
import { Tensor, SGD, manualSeed, randn, randint, tidy, noGrad } from '../../../src/index';
import { applyMethod } from '../../../src/methods';
import { MethodModel } from '../../../src/methods/method';
import type { AdaFilterModel } from '../../../src/methods/adafilter';
import { Module } from '../../../src/nn/module';
import { DistributedDataParallel } from '../../../src/dist';
import { SmallCnn } from '../../helpers/small-cnn';
import { fakePretrained } from '../../methods/helpers';
import * as F from '../../../src/nn/functional';

export type MethodKind = 'bn' | 'adafilter';
export const METHOD_STEPS = 4;
const MICRO_BATCH = 4;
const CLASSES = { bn: 4, adafilter: 5 } as const;

export interface Trainee {
  module: Module;
  /** Gates forced to 0 or 1 (one path skipped) or learned (null), for AdaFilter. */
  forceGates?(v: 0 | 1 | null): void;
  /** The loss of one micro-batch, forward pass included. */
  loss(x: Tensor, y: Tensor): Tensor;
  optimizer: SGD;
}

export function makeTrainee(kind: MethodKind): Trainee {
  if (kind === 'bn') {
    manualSeed(11);
    const m = new SmallCnn();
    return { module: m, loss: (x, y) => F.crossEntropy(m.forward(x), y), optimizer: new SGD(m.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 }) };
  }
  const m: MethodModel = applyMethod('adafilter', fakePretrained(3, CLASSES.adafilter), CLASSES.adafilter);
  return { module: m, forceGates: (v) => (m as AdaFilterModel).forceGates(v), loss: (x, y) => m.loss(m.run(x), y), optimizer: new SGD(m.paramGroups({ lr: 0.01 }), { lr: 0.01, momentum: 0.9 }) };
}

/** Micro-batch `part` of step `step`: its images and labels, drawn from a seed of their own. */
export function microBatch(kind: MethodKind, step: number, part: number): { x: Tensor; y: Tensor } {
  manualSeed(5000 + step * 10 + part);
  const size = kind === 'bn' ? 8 : 16;
  return { x: randn([MICRO_BATCH, 3, size, size]), y: randint(0, CLASSES[kind], [MICRO_BATCH]) };
}

/**
 * AdaFilter's gates in micro-batch `part` of step `step`: forced to 0 (the fine-tuned path skipped),
 * to 1 (the pretrained path skipped) or learned, so the set of parameters a rank leaves unused
 * differs between the ranks of a step and changes from step to step.
 */
export const forcedGates = (step: number, part: number): 0 | 1 | null => [0, 1, null][(step + part) % 3] as 0 | 1 | null;

/** Forward and backward of micro-batch `part`; its gate noise comes from a seed of its own too. */
export function backwardMicroBatch(t: Trainee, kind: MethodKind, step: number, part: number, o: { scale?: number; ddp?: DistributedDataParallel } = {}): void {
  tidy(() => {
    const { x, y } = microBatch(kind, step, part);
    t.forceGates?.(forcedGates(step, part));
    manualSeed(9000 + step * 10 + part);
    const run = (): Tensor => t.loss(x, y).mul(o.scale ?? 1);
    const loss = o.ddp ? o.ddp.forward(run, (l) => [l]) : run();
    loss.backward();
  });
}

export function trainableValues(m: Module): Record<string, number[]> {
  return noGrad(() => Object.fromEntries(m.namedParameters().filter(([, p]) => p.requiresGrad).map(([n, p]) => [n, p.detach().toArray()])));
}

