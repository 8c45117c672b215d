/**
 * TF.js (cpu backend) as the independent reference for the TF.js importer: tfjs-layers builds the
 * Keras graph from the topology and tfjs-core dequantises the weights itself. Test-only code.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { fromTyped } from '../../src/engine/creation';
import { Tensor } from '../../src/engine/tensor';

export { tf, tfl };

let ready: Promise<boolean> | null = null;
export function cpuBackend(): Promise<boolean> {
  ready ??= tf.setBackend('cpu');
  return ready;
}

/** Deterministic values in [lo, hi) (mulberry32). */
export function uniform(n: number, seed: number, lo = 0, hi = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

/** An NHWC batch as our NCHW tensor. */
export function nchw(x: Float32Array, [n, h, w, c]: number[]): Tensor {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) for (let ch = 0; ch < c; ch++) {
    out[((b * c + ch) * h + y) * w + xx] = x[((b * h + y) * w + xx) * c + ch];
  }
  return fromTyped(out, 'float32', [n, c, h, w]);
}

/** max |ours − theirs| for our NCHW (or [N, C]) tensor against TF.js's NHWC (or [N, C]) values. */
export function maxAbsDiff(ours: Tensor, theirs: Float32Array, theirShape: number[]): number {
  const o = ours.contiguous().toFloat32Array();
  if (o.length !== theirs.length) throw new Error(`sizes differ: [${ours.shape}] vs [${theirShape}]`);
  let worst = 0;
  if (theirShape.length === 2) {
    for (let i = 0; i < o.length; i++) worst = Math.max(worst, Math.abs(o[i] - theirs[i]));
    return Number.isNaN(worst) ? Infinity : worst;
  }
  const [n, h, w, c] = theirShape;
  for (let b = 0; b < n; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) {
    const d = Math.abs(o[((b * c + ch) * h + y) * w + x] - theirs[((b * h + y) * w + x) * c + ch]);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst;
}

/** Runs `model` up to the named layers on an NHWC batch; outputs of rank 4 are also returned pooled. */
export function run(model: tfl.LayersModel, names: string[], x: Float32Array, shape: number[]): { data: Float32Array; shape: number[]; pooled: Float32Array }[] {
  const sub = tfl.model({ inputs: model.inputs, outputs: names.map((n) => model.getLayer(n).output as tfl.SymbolicTensor) });
  return tf.tidy(() => {
    const outs = sub.predict(tf.tensor4d(x, shape as [number, number, number, number])) as tf.Tensor | tf.Tensor[];
    return (Array.isArray(outs) ? outs : [outs]).map((t) => ({
      data: t.dataSync() as Float32Array, shape: t.shape, pooled: tf.mean(t, [1, 2]).dataSync() as Float32Array,
    }));
  });
}

/** float32 → IEEE half bits, round to nearest even (normal range only, enough for test weights). */
export function toHalf(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const e = ((u >>> 23) & 0xff) - 127 + 15;
  let m = u & 0x7fffff;
  if (e <= 0) return sign;
  const round = m & 0x1fff;
  m >>>= 13;
  let h = sign | (e << 10) | m;
  if (round > 0x1000 || (round === 0x1000 && (m & 1))) h++;
  return h;
}
