/**
 * A linear probe's frozen backbone computes the same features for an image every epoch when
 * nothing is augmented, so they are computed once and the head trains on them: a probe then costs
 * one forward pass of the training data instead of one per epoch, and the loader stops decoding
 * images. The batches keep their order and composition (the loader still shuffles by (seed,
 * epoch)), and each step runs the model's own head path on the cached rows, so the head ends where
 * the uncached run ends, within float tolerance.
 */
import { Tensor } from '../engine/tensor';
import { fromTyped } from '../engine/creation';
import { noGrad } from '../engine/autograd';
import { tidy } from '../engine/scope';
import { MethodModel } from '../methods/method';
import { LinearProbeModel } from '../methods/linear-probe';
import { Batch, Loader } from '../data/loader';
import { inputsOf } from './batch';
import { onDevice } from '../engine/device';

/** Above this the features do not fit comfortably in memory: the uncached path runs instead. */
export const MAX_CACHE_BYTES = 1 << 30;

export interface FeatureCacheOptions {
  augment: boolean;
  /** TrainOptions.featureCache (default true). */
  featureCache: boolean;
}

export class FeatureCache {
  private constructor(private readonly model: LinearProbeModel, private readonly rows: Float32Array, readonly dim: number,
    private readonly device: string) {}

  /** Whether `model` trained with these options qualifies: a linear probe, nothing random in its input. */
  static applies(model: MethodModel, o: FeatureCacheOptions): model is LinearProbeModel {
    return o.featureCache && !o.augment && model instanceof LinearProbeModel;
  }

  /**
   * The features of every training item, from one pass of `train` (epoch 0's batches: the same
   * compositions the uncached run's first epoch computes); afterwards `train` yields labels and
   * rows only. Null when the cache does not apply.
   */
  static async build(model: MethodModel, train: Loader, o: FeatureCacheOptions): Promise<FeatureCache | null> {
    if (!FeatureCache.applies(model, o)) return null;
    const n = train.items.length, dim = model.head.inFeatures;
    if (n * dim * 4 > MAX_CACHE_BYTES) return null;
    const cache = new Float32Array(n * dim);
    const device = model.device;
    for await (const b of train.epoch(0)) {
      const f = tidy(() => noGrad(() => model.features(inputsOf(b, device)).contiguous().data() as Float32Array));
      if (f.length !== b.y.length * dim) throw new Error(`internal: features of width ${f.length / b.y.length}, the head takes ${dim}`);
      const rows = rowsOf(b);
      for (let i = 0; i < rows.length; i++) cache.set(f.subarray(i * dim, (i + 1) * dim), rows[i] * dim);
    }
    train.pixels = false;
    return new FeatureCache(model, cache, dim, device);
  }

  /** The step's logits: the model's head path (dropout included) on the batch's cached features. */
  logits(b: Batch): Tensor {
    const rows = rowsOf(b), d = this.dim;
    const x = new Float32Array(rows.length * d);
    for (let i = 0; i < rows.length; i++) x.set(this.rows.subarray(rows[i] * d, (rows[i] + 1) * d), i * d);
    return this.model.forwardFeatures(onDevice(fromTyped(x, 'float32', [rows.length, d]), this.device));
  }
}

function rowsOf(b: Batch): Int32Array {
  if (!b.rows) throw new Error('internal: the feature cache needs batches from a Loader (with rows)');
  return b.rows;
}
