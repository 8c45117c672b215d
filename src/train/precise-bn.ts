/**
 * Precise BN: re-estimates every BatchNorm's running statistics with one pass over training images
 * (no augmentation, no gradient) under the model's evaluation behaviour, before a validation or test.
 *
 * Why: the running averages a BN gathers during training describe the inputs it saw in training
 * passes. Behind a gated layer those inputs were mixed by training gates (Gumbel samples, a warm
 * start's forced gates), while evaluation uses deterministic gates — a different input distribution
 * (the dropout variance shift). Re-estimating under the evaluation gates removes the mismatch.
 *
 * How: everything is put in evaluation mode (gates, policies, dropout) except the BN layers, which
 * normalise with batch statistics and update their running averages as in training — fvcore's
 * update_bn_stats and torch.optim.swa_utils.update_bn. Each BN's momentum is 1/(k + 1) at its k-th
 * batch of the pass, so its running statistics end as the plain mean over the batches it saw of the
 * batch mean and (unbiased) batch variance. A BN that no batch reached (a path every gate skipped)
 * keeps its previous statistics. FrozenBatchNorm2d layers are the pretrained layer and are left alone.
 *
 * Cost: one forward pass over the training split per call, without gradients (about a third of a
 * training epoch).
 */
import { noGrad } from '../engine/autograd';
import { tidy, keep } from '../engine/scope';
import { BatchNorm2d, FrozenBatchNorm2d } from '../nn/batchnorm';
import { Module } from '../nn/module';
import type { Batch } from '../data/loader';
import { inputsOf } from './batch';

/** Whether a run recalibrates: 'auto' does for gated methods (the mismatch above is theirs). */
export type PreciseBn = 'auto' | 'on' | 'off';
export const PRECISE_BN: readonly PreciseBn[] = ['auto', 'on', 'off'];

export function usesPreciseBn(setting: PreciseBn, gated: boolean): boolean {
  return setting === 'on' || (setting === 'auto' && gated);
}

/**
 * Recalibrates `model`'s BN statistics on `batches` (the training split without augmentation, at
 * the training batch size); returns the number of images seen.
 */
export async function recalibrateBn(model: Module, batches: AsyncIterable<Batch> | Iterable<Batch>): Promise<number> {
  const bns = model.modules().filter((m): m is BatchNorm2d => m instanceof BatchNorm2d && !(m instanceof FrozenBatchNorm2d));
  if (bns.length === 0) return 0;
  const wasTraining = model.training;
  const saved = bns.map((bn) => noGrad(() => ({
    momentum: bn.momentum,
    tracked: bn.num_batches_tracked.item(),
    mean: keep(bn.running_mean.clone()),
    var: keep(bn.running_var.clone()),
  })));
  model.eval();
  for (const bn of bns) bn.train();
  let images = 0;
  const device = model.device;
  try {
    for await (const b of batches) {
      bns.forEach((bn, i) => { bn.momentum = 1 / (bn.num_batches_tracked.item() - saved[i].tracked + 1); });
      noGrad(() => tidy(() => { model.forward(inputsOf(b, device)); }));
      images += b.y.length;
    }
  } finally {
    noGrad(() => bns.forEach((bn, i) => {
      const s = saved[i];
      // num_batches_tracked is put back: the pass is not training, and a checkpoint must not depend on it.
      if (bn.num_batches_tracked.item() === s.tracked) {
        bn.running_mean.copy_(s.mean);
        bn.running_var.copy_(s.var);
      }
      bn.num_batches_tracked.fill_(s.tracked);
      bn.momentum = s.momentum;
      s.mean.dispose();
      s.var.dispose();
    }));
    model.train(wasTraining);
  }
  return images;
}
