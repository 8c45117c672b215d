import { Tensor } from '../../engine/tensor';
import { noGrad } from '../../engine/autograd';
import { aten } from '../../engine/tensor';
import { cat } from '../../engine/creation';
import { keep, release } from '../../engine/scope';
import { Module } from '../../nn/module';
import { Buffer } from '../../nn/parameter';
import { BatchNorm2d, FrozenBatchNorm2d } from '../../nn/batchnorm';
import { batchNorm } from '../../nn/functional';

/** A new BatchNorm2d (or FrozenBatchNorm2d) with the parameters and running statistics of `bn`. */
export function copyBatchNorm(bn: BatchNorm2d, frozen = false): BatchNorm2d {
  const Kind = frozen ? FrozenBatchNorm2d : BatchNorm2d;
  const out = new Kind(bn.numFeatures, { eps: bn.eps, momentum: bn.momentum, affine: bn.weight !== null });
  noGrad(() => out.loadStateDict(bn.stateDict()));
  return out;
}

/** y = g·a + (1 − g)·b with g [B, C] broadcast over H×W (torch.lerp: b + g·(a − b)). */
export function mix(a: Tensor, b: Tensor, g: Tensor): Tensor {
  const g4 = g.view(g.size(0), g.size(1), 1, 1);
  // lerp wants one dtype: under autocast the paths are bf16 while the gates were decided in fp32
  // (0 and 1 are exact in either).
  return aten('aten::lerp', 'Tensor', [b, a, g4.dtype === a.dtype ? g4 : g4.to(a.dtype)]);
}

/**
 * Gated batch normalisation: BN_F normalises the fine-tuned filters' outputs and BN_S the pretrained
 * ones, each with its own running statistics; both start from the pretrained BN. With `single`
 * (ablation adafilter-nogbn) one BN is applied after mixing the raw convolution outputs.
 *
 * For speed the running statistics of BN_F and BN_S are views into one [2C] tensor, so that both
 * paths, computed by one convolution with 2C outputs [F; S], are normalised by one batch_norm call
 * (forwardBoth). They are still two BatchNorm2d modules with their own state-dict entries.
 */
export class GatedBatchNorm extends Module {
  bn_f: BatchNorm2d | null;
  bn_s: BatchNorm2d | null;
  bn: BatchNorm2d | null;
  #mean: Tensor | null = null;
  #var: Tensor | null = null;

  /**
   * `pretrainedS`: BN_S is the pretrained BN frozen (a FrozenBatchNorm2d: running statistics and
   * affine fixed), so the S path is exactly the pretrained layer.
   */
  constructor(pretrained: BatchNorm2d, readonly single: boolean, frozenAffineS: boolean, readonly pretrainedS = false) {
    super();
    if (single) {
      this.bn = pretrained;
      this.bn_f = this.bn_s = null;
    } else {
      this.bn = null;
      this.bn_f = copyBatchNorm(pretrained);
      if (pretrainedS) {
        this.bn_s = copyBatchNorm(pretrained, true);
        pretrained.dispose();
      } else {
        this.bn_s = pretrained;
      }
      if (frozenAffineS || pretrainedS) {
        this.bn_s.weight?.requiresGrad_(false);
        this.bn_s.bias?.requiresGrad_(false);
      }
      const c = pretrained.numFeatures;
      noGrad(() => {
        this.#mean = keep(cat([this.bn_f!.running_mean, this.bn_s!.running_mean]));
        this.#var = keep(cat([this.bn_f!.running_var, this.bn_s!.running_var]));
        for (const [bn, start] of [[this.bn_f!, 0], [this.bn_s!, c]] as [BatchNorm2d, number][]) {
          bn.running_mean.dispose();
          bn.running_var.dispose();
          bn.running_mean = new Buffer(this.#mean!.narrow(0, start, c));
          bn.running_var = new Buffer(this.#var!.narrow(0, start, c));
        }
      });
    }
  }

  /**
   * Both paths at once: y2 [B, 2C, H, W] holds F*x in channels [0, C) and S*x in [C, 2C); the
   * result is the gated mixture.
   */
  forwardBoth(y2: Tensor, g: Tensor): Tensor {
    const c = y2.size(1) / 2;
    if (this.single) {
      return this.bn!.forward(mix(y2.narrow(1, 0, c), y2.narrow(1, c, c), g));
    }
    const f = this.bn_f!, s = this.bn_s!;
    // BN_F's own mode, not this container's: whoever sets the BN layers' modes (precise BN runs them
    // in training mode inside an evaluating model) sets the fused call's too.
    const training = f.training;
    if (training) noGrad(() => { f.num_batches_tracked.add_(1); s.num_batches_tracked.add_(1); });
    const w = f.weight && s.weight ? cat([f.weight, s.weight]) : null;
    const b = f.bias && s.bias ? cat([f.bias, s.bias]) : null;
    const z = batchNorm(y2, this.#mean, this.#var, w, b, { training, momentum: f.momentum, eps: f.eps });
    return mix(z.narrow(1, 0, c), z.narrow(1, c, c), g);
  }

  /** Mixes raw conv outputs yF, yS (either null when that path was skipped) with gates g. */
  forward(yF: Tensor | null, yS: Tensor | null, g: Tensor, keepGateGrad: boolean): Tensor {
    if (this.single) {
      const mixed = yF && yS ? mix(yF, yS, g) : skipped(yF, yS, g, keepGateGrad);
      const y = this.bn!.forward(mixed);
      release(mixed, yF, yS, y);
      return y;
    }
    const a = yF ? this.bn_f!.forward(yF) : null;
    const b = yS ? this.bn_s!.forward(yS) : null;
    const y = a && b ? mix(a, b, g) : skipped(a, b, g, keepGateGrad);
    release(a, y);
    release(b, y);
    return y;
  }

  override dispose(): void {
    super.dispose();
    this.#mean?.dispose();
    this.#var?.dispose();
  }
}

/**
 * One path skipped (every gate chose the other): its value is exact. With keepGateGrad the kept path
 * is multiplied by g (or 1 − g), which is 1 in value, so the gate still gets a gradient.
 */
function skipped(a: Tensor | null, b: Tensor | null, g: Tensor, keepGateGrad: boolean): Tensor {
  const g4 = () => g.view(g.size(0), g.size(1), 1, 1);
  if (a) return keepGateGrad ? a.mul(g4()) : a;
  if (b) return keepGateGrad ? b.mul(g4().neg().add(1)) : b;
  throw new Error('gated layer: both paths skipped');
}
