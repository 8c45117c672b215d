/**
 * Image transforms as plain data (so they cross to workers as-is) and one function that applies
 * them. Resize, crop, flip and rotation are folded into a single inverse mapping sampled once
 * bilinearly: one pass, no intermediate images, and the same bits in every thread.
 */
import { RawImage } from './dataset';
import { Rng } from './rng';
import { InputError } from '../errors';

export interface Stats { mean: number[]; std: number[] }

export const IMAGENET_STATS: Stats = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
/** x/255 and nothing else (TF.js / Keras MobileNetV2 as nsfwjs uses it). */
export const NO_STATS: Stats = { mean: [0, 0, 0], std: [1, 1, 1] };

/** How to normalise the 0..1 pixels, as a user names it (--normalize). */
export type NormalizeChoice = 'dataset' | 'imagenet' | 'none' | Stats;

/** Checks statistics from a user or a file: equal lengths of 1 or 3, finite means, positive stds. */
export function checkStats(s: unknown, where: string): Stats {
  const o = s as Stats;
  const ok = typeof s === 'object' && s !== null && Array.isArray(o.mean) && Array.isArray(o.std)
    && (o.mean.length === 1 || o.mean.length === 3) && o.std.length === o.mean.length
    && o.mean.every((x) => typeof x === 'number' && Number.isFinite(x)) && o.std.every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0);
  if (!ok) throw new InputError(`${where}: expected {mean, std} of 1 or 3 numbers each, stds positive, got ${JSON.stringify(s)}`);
  return { mean: o.mean.slice(), std: o.std.slice() };
}

export function checkNormalize(n: unknown, where: string): NormalizeChoice {
  if (n === 'dataset' || n === 'imagenet' || n === 'none') return n;
  return checkStats(n, where);
}

/**
 * `--normalize dataset|imagenet|none|MEAN,STD|M1,M2,M3,S1,S2,S3`: two numbers serve every channel,
 * six are three means then three stds.
 */
export function parseNormalize(text: string, where = '--normalize'): NormalizeChoice {
  if (text === 'dataset' || text === 'imagenet' || text === 'none') return text;
  const xs = text.split(',').map((t) => (t.trim() === '' ? NaN : Number(t)));
  if ((xs.length !== 2 && xs.length !== 6) || xs.some((x) => !Number.isFinite(x))) {
    throw new InputError(`${where}: expected dataset, imagenet, none, MEAN,STD or M1,M2,M3,S1,S2,S3, got '${text}'`);
  }
  const half = xs.length / 2;
  return checkStats({ mean: xs.slice(0, half), std: xs.slice(half) }, where);
}

/** A choice as the statistics a backbone's input records ('dataset' stays: it needs the target). */
export function normalizeStats(n: NormalizeChoice): Stats | 'dataset' {
  if (n === 'imagenet') return { mean: IMAGENET_STATS.mean.slice(), std: IMAGENET_STATS.std.slice() };
  if (n === 'none') return { mean: NO_STATS.mean.slice(), std: NO_STATS.std.slice() };
  return n;
}

/** Names well-known statistics ('ImageNet mean/std', 'x/255 only'), else null. */
export function knownStatsName(s: Stats): string | null {
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) < 1e-6);
  if (same(s.mean, IMAGENET_STATS.mean) && same(s.std, IMAGENET_STATS.std)) return "ImageNet's mean/std";
  if (s.mean.every((v) => v === 0) && s.std.every((v) => v === 1)) return 'x/255 only';
  return null;
}

export interface TransformSpec {
  /** Output side, or [height, width]. */
  size: number | [number, number];
  /** Output channels; grayscale images are repeated to 3, colour ones averaged to 1 (ITU-R 601 luma). */
  channels: 1 | 3;
  /** Short side after resizing, before the crop; default: the output's larger side. */
  resize?: number;
  /** 'center' (default) or 'random' (a random position, per sample). */
  crop?: 'center' | 'random';
  /** Zero border added around the resized image for random crops (CIFAR-style shifts). */
  pad?: number;
  /** Random horizontal flip with probability 1/2. */
  flip?: boolean;
  /** Random rotation, uniform in ±rotate degrees. */
  rotate?: number;
  /** Per-channel normalisation of the 0..1 pixels; 'dataset' needs statistics (see datasetStats). */
  normalize?: 'none' | 'imagenet' | 'dataset' | Stats;
}

/** A spec with every default filled in and statistics resolved: what workers receive. */
export interface ResolvedTransform {
  height: number;
  width: number;
  channels: 1 | 3;
  resize: number;
  crop: 'center' | 'random';
  pad: number;
  flip: boolean;
  rotate: number;
  mean: number[];
  std: number[];
}

export function resolveTransform(spec: TransformSpec, datasetStats?: Stats): ResolvedTransform {
  const [height, width] = typeof spec.size === 'number' ? [spec.size, spec.size] : spec.size;
  const posInt = (v: number, what: string) => {
    if (!Number.isInteger(v) || v < 1 || v > 4096) throw new InputError(`transform: ${what} must be an integer in 1..4096, got ${v}`);
    return v;
  };
  posInt(height, 'height'); posInt(width, 'width');
  const resize = posInt(spec.resize ?? Math.max(height, width), 'resize');
  const pad = spec.pad ?? 0;
  if (!Number.isInteger(pad) || pad < 0) throw new InputError(`transform: pad must be a non-negative integer, got ${pad}`);
  const rotate = spec.rotate ?? 0;
  if (!(rotate >= 0 && rotate <= 180)) throw new InputError(`transform: rotate must be in 0..180 degrees, got ${rotate}`);
  if (spec.channels !== 1 && spec.channels !== 3) throw new InputError(`transform: channels must be 1 or 3, got ${spec.channels}`);
  let stats: Stats;
  const norm = spec.normalize ?? 'none';
  if (norm === 'none') stats = { mean: [0, 0, 0], std: [1, 1, 1] };
  else if (norm === 'imagenet') stats = IMAGENET_STATS;
  else if (norm === 'dataset') {
    if (!datasetStats) throw new InputError("transform: normalize 'dataset' needs the dataset's statistics");
    stats = datasetStats;
  } else stats = norm;
  const pick = (a: number[]) => {
    // One-channel statistics serve three channels and vice versa (ImageNet on grayscale: their mean).
    if (a.length === spec.channels) return a.slice();
    if (a.length === 1) return [a[0], a[0], a[0]].slice(0, spec.channels);
    if (spec.channels === 1) return [a.reduce((s, v) => s + v, 0) / a.length];
    throw new InputError(`transform: statistics for ${a.length} channels do not fit ${spec.channels}`);
  };
  const mean = pick(stats.mean), std = pick(stats.std);
  if (std.some((s) => !(s > 0))) throw new InputError('transform: normalisation std must be positive');
  return { height, width, channels: spec.channels, resize, crop: spec.crop ?? 'center', pad, flip: Boolean(spec.flip), rotate, mean, std };
}

/** The deterministic evaluation version of a training transform: centre crop, no flip or rotation. */
export function evalTransform(t: ResolvedTransform): ResolvedTransform {
  return { ...t, crop: 'center', pad: 0, flip: false, rotate: 0 };
}

/**
 * Writes `img` transformed into `out` (CHW float32) at `offset`. `rng` supplies the random draws
 * in a fixed order (crop y, crop x, flip, angle), so a per-sample generator gives the same result
 * wherever it runs.
 */
export function applyTransform(img: RawImage, t: ResolvedTransform, rng: Rng | null, out: Float32Array, offset: number): void {
  const { height: H, width: W, channels: C } = t;
  const h0 = img.height, w0 = img.width, c0 = img.channels, src = img.data;
  const s = t.resize / Math.min(h0, w0);
  const H1 = Math.round(h0 * s), W1 = Math.round(w0 * s);
  let y0 = (H1 - H) / 2, x0 = (W1 - W) / 2;
  let flip = false, angle = 0;
  if (t.crop === 'random' && rng) {
    const ry = H1 - H + 2 * t.pad, rx = W1 - W + 2 * t.pad;
    y0 = ry >= 0 ? rng.int(ry + 1) - t.pad : y0;
    x0 = rx >= 0 ? rng.int(rx + 1) - t.pad : x0;
  }
  if (t.flip && rng) flip = rng.float() < 0.5;
  if (t.rotate > 0 && rng) angle = rng.uniform(-t.rotate, t.rotate) * Math.PI / 180;
  const cos = Math.cos(angle), sin = Math.sin(angle);
  const sx = w0 / W1, sy = h0 / H1;
  const plane = H * W;
  const scale = new Float64Array(C), bias = new Float64Array(C);
  for (let c = 0; c < C; c++) { scale[c] = 1 / (255 * t.std[c]); bias[c] = -t.mean[c] / t.std[c]; }
  // Source channels read per output channel: gray → 3 repeats channel 0; colour → 1 uses luma below.
  const luma = C === 1 && c0 === 3;
  const srcChan = (c: number) => (c0 === 1 ? 0 : c);
  const ch0 = srcChan(0), ch1 = srcChan(1), ch2 = srcChan(2);
  // The mapping is affine in (i, j): step it instead of recomputing the matrix product per pixel.
  const ax = (flip ? -cos : cos) * sx, ay = (flip ? sin : -sin) * sy; // d(xs, ys)/dj
  const bx = sin * sx, by = cos * sy;                                // d(xs, ys)/di
  const cx = (x0 + W / 2) * sx - 0.5, cy = (y0 + H / 2) * sy - 0.5;
  const w1 = w0 - 1, h1 = h0 - 1, xmax = w0 - 0.5, ymax = h0 - 0.5;
  for (let i = 0; i < H; i++) {
    const v = i + 0.5 - H / 2;
    const u0 = 0.5 - W / 2;
    for (let j = 0; j < W; j++) {
      const u = u0 + j;
      const xs = cx + ax * u + bx * v, ys = cy + ay * u + by * v;
      const o = offset + i * W + j;
      if (xs < -0.5 || ys < -0.5 || xs > xmax || ys > ymax) {
        for (let c = 0; c < C; c++) out[o + c * plane] = bias[c];
        continue;
      }
      const xf = Math.floor(xs), yf = Math.floor(ys);
      const fx = xs - xf, fy = ys - yf;
      const xa = xf < 0 ? 0 : xf, xb = xf + 1 > w1 ? w1 : xf + 1;
      const ya = yf < 0 ? 0 : yf, yb = yf + 1 > h1 ? h1 : yf + 1;
      const w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
      const p00 = (ya * w0 + xa) * c0, p01 = (ya * w0 + xb) * c0, p10 = (yb * w0 + xa) * c0, p11 = (yb * w0 + xb) * c0;
      if (luma) {
        const r = src[p00] * w00 + src[p01] * w01 + src[p10] * w10 + src[p11] * w11;
        const g = src[p00 + 1] * w00 + src[p01 + 1] * w01 + src[p10 + 1] * w10 + src[p11 + 1] * w11;
        const b = src[p00 + 2] * w00 + src[p01 + 2] * w01 + src[p10 + 2] * w10 + src[p11 + 2] * w11;
        out[o] = (0.299 * r + 0.587 * g + 0.114 * b) * scale[0] + bias[0];
        continue;
      }
      out[o] = (src[p00 + ch0] * w00 + src[p01 + ch0] * w01 + src[p10 + ch0] * w10 + src[p11 + ch0] * w11) * scale[0] + bias[0];
      if (C === 3) {
        out[o + plane] = (src[p00 + ch1] * w00 + src[p01 + ch1] * w01 + src[p10 + ch1] * w10 + src[p11 + ch1] * w11) * scale[1] + bias[1];
        out[o + 2 * plane] = (src[p00 + ch2] * w00 + src[p01 + ch2] * w01 + src[p10 + ch2] * w10 + src[p11 + ch2] * w11) * scale[2] + bias[2];
      }
    }
  }
}
