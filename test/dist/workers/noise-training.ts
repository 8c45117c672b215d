/**
 * The float64 training of test/dist/noise.test.ts: methods whose training passes draw per-example
 * noise (AdaFilter's Gumbel gates, SpotTune's Gumbel-softmax choice, tap-probe's dropout), a few SGD
 * steps on one global batch. BN runs in eval mode (its statistics fixed), so that with the same
 * noise every example's loss depends on its own image alone and a rank's share of the batch gives
 * the same gradient as one process with all of it: what is left to differ is the noise.
 */
import { Tensor, SGD, manualSeed, randn, randint, tidy, noGrad } from '../../../src/index';
import { applyMethod } from '../../../src/methods';
import { MethodModel } from '../../../src/methods/method';
import { BatchNorm2d } from '../../../src/nn/batchnorm';
import { DataParallel } from '../../../src/dist/data-parallel';
import { fakePretrained } from '../../methods/helpers';

export type NoiseKind = 'adafilter' | 'spottune' | 'tap-probe';
export const NOISE_KINDS: NoiseKind[] = ['adafilter', 'spottune', 'tap-probe'];
export const NOISE_STEPS = 3;
export const GLOBAL_BATCH = 8;
const CLASSES = 5;

const OPTIONS: Record<NoiseKind, Record<string, unknown>> = {
  adafilter: { gateMode: 'gumbel' },
  spottune: {},
  'tap-probe': { taps: 'layer2.2:mean,layer3.2:max', hidden: 16, dropout: 0.5 },
};

export interface NoiseTrainee {
  model: MethodModel;
  optimizer: SGD;
}

/** The method on a fake pretrained resnet20, float64, in training mode with BN in eval mode. */
export function makeNoiseTrainee(kind: NoiseKind): NoiseTrainee {
  const model = applyMethod(kind, fakePretrained(3, CLASSES), CLASSES, OPTIONS[kind]).to('float64');
  model.train();
  for (const m of model.modules()) if (m instanceof BatchNorm2d) m.training = false;
  return { model, optimizer: new SGD(model.paramGroups({ lr: 0.05 }), { lr: 0.05, momentum: 0.9 }) };
}

/** The global batch every step trains on. */
export function noiseBatch(): { x: Tensor; y: Tensor } {
  manualSeed(77);
  return { x: randn([GLOBAL_BATCH, 3, 16, 16], { dtype: 'float64' }), y: randint(0, CLASSES, [GLOBAL_BATCH]) };
}

/**
 * NOISE_STEPS steps on the global batch, each after manualSeed(noiseSeed + step) as the trainer
 * seeds its steps; with dp, each step on this rank's share under DDP.
 */
export function trainNoisy(t: NoiseTrainee, batch: { x: Tensor; y: Tensor }, noiseSeed: number, dp?: DataParallel): void {
  const n = batch.y.size(0);
  for (let step = 0; step < NOISE_STEPS; step++) {
    tidy(() => {
      const [x, y] = dp ? [dp.take(batch.x), dp.take(batch.y)] : [batch.x, batch.y];
      t.optimizer.zeroGrad();
      manualSeed(noiseSeed + step);
      const run = (): Tensor => t.model.loss(t.model.run(x), y);
      const loss = dp ? dp.forward(n, run, (l) => [l]) : run();
      (dp ? loss.mul(dp.lossScale(n)) : loss).backward();
      t.optimizer.step();
    });
  }
}

export function trainedValues(m: MethodModel): Record<string, number[]> {
  return noGrad(() => Object.fromEntries(m.namedParameters().filter(([, p]) => p.requiresGrad).map(([k, p]) => [k, p.detach().toArray()])));
}
