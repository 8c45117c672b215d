/** `predict`: class probabilities for image files from a trained run. */
import * as fs from 'node:fs';
import { tidy } from '../engine/scope';
import { noGrad } from '../engine/autograd';
import { fromTyped } from '../engine/creation';
import { softmax } from '../nn/functional';
import { decodeImage } from '../data/decode';
import { applyTransform } from '../data/transforms';
import { InputError } from '../errors';
import { LoadedRun, loadRun } from './load-run';
import { withFoldedBatchNorm } from '../nn/fold-bn';
import { resolveCompute } from './options';
import { onDevice } from '../engine/device';
import { atLeastFloat32, inPrecision, Precision } from '../engine/precision';

export interface Prediction {
  file: string;
  top: { class: string; index: number; probability: number }[];
}

export interface PredictOptions {
  topk?: number;
  /** Default fp32; see TrainOptions.precision. */
  precision?: Precision;
  /** Default cpu; see TrainOptions.device. */
  device?: string;
  /**
   * Default true: every conv+BN pair of the backbone runs as one convolution with the BN folded in
   * (nn/fold-bn.ts), one operator and one activation fewer per pair. Probabilities differ from the
   * unfolded model's by rounding only (within 1e-5 relative), not bit for bit. Methods whose layers
   * are not plain conv+BN (AdaFilter's gated convs, linear-probe's cut backbone) run unfolded.
   */
  foldBn?: boolean;
}

export async function predict(runDir: string, images: string[], o: PredictOptions = {}): Promise<Prediction[]> {
  if (images.length === 0) throw new InputError('predict: no image files given');
  resolveCompute(o); // a device or precision this machine cannot run fails before anything loads
  const run = loadRun(runDir);
  try {
    return await predictWith(run, images, o);
  } finally {
    run.model.dispose();
  }
}

/** predict on a run already loaded (loadRun): the model is moved to the device, its weights and state left as they were. */
export async function predictWith(run: LoadedRun, images: string[], o: PredictOptions = {}): Promise<Prediction[]> {
  if (images.length === 0) throw new InputError('predict: no image files given');
  const { device, precision } = resolveCompute(o);
  run.model.to(device);
  const t = run.transform;
  const k = Math.min(o.topk ?? 5, run.config.classes.length);
  if (!Number.isInteger(k) || k < 1) throw new InputError(`topk: expected a positive integer, got ${o.topk}`);
  const per = t.channels * t.height * t.width;
  const x = new Float32Array(images.length * per);
  for (let i = 0; i < images.length; i++) {
    let bytes: Buffer;
    try { bytes = fs.readFileSync(images[i]); } catch (e) {
      throw new InputError(`${images[i]}: cannot read (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
    const img = await decodeImage(bytes, t.channels, images[i], t.resize);
    applyTransform(img, t, null, x, i * per);
  }
  const probs = noGrad(() => tidy(() => {
    const forward = () => run.model.forward(onDevice(fromTyped(x, 'float32', [images.length, t.channels, t.height, t.width]), device));
    const logits = inPrecision(precision, device, () => (o.foldBn === false ? forward() : withFoldedBatchNorm(run.model.backbone, forward)));
    return softmax(atLeastFloat32(logits), 1).toFloat32Array();
  }));
  const n = run.config.classes.length;
  return images.map((file, i) => {
    const row = Array.from(probs.subarray(i * n, (i + 1) * n), (p, index) => ({ index, p }));
    row.sort((a, b) => b.p - a.p || a.index - b.index);
    return { file, top: row.slice(0, k).map((r) => ({ class: run.config.classes[r.index], index: r.index, probability: r.p })) };
  });
}
