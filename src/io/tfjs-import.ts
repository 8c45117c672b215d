import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import { fromTyped } from '../engine/creation';
import { noGrad } from '../engine/autograd';
import { Tensor } from '../engine/tensor';
import { Conv2d } from '../nn/conv';
import { BatchNorm2d } from '../nn/batchnorm';
import { Backbone, ConvBn } from '../models/backbone';
import { makeDivisible, MobileNetV2 } from '../models/mobilenetv2';
import { ResNet } from '../models/resnet';
import { JsonValue } from './strict-json';
import { KerasLayer, readTfjsModel, TfjsModel, TfjsWeight } from './tfjs-format';

/**
 * Keras models in TF.js LayersModel format mapped onto our backbones: keras.applications'
 * MobileNetV2 (e.g. nsfwjs's) onto MobileNetV2 with Keras padding, and keras.applications'
 * ResNet50 naming (`conv2_block1_1_conv`, …) onto ResNet with Bottlenecks. The topology is checked
 * against the backbone (kinds, kernel sizes, strides, padding, residual adds) before any weight is
 * copied; classifier heads are dropped and the backbone gets a fresh one.
 */

/** How the imported model expects its input: x in [0, 1] (RGB, NCHW), then (x − mean) / std per channel. */
export interface Preprocess {
  mean: [number, number, number];
  std: [number, number, number];
  /** Where the convention comes from. */
  note: string;
}

/** nsfwjs feeds pixels / 255: x in [0, 1] as it is. */
export const NSFWJS_PREPROCESS: Preprocess = { mean: [0, 0, 0], std: [1, 1, 1], note: 'nsfwjs: x/255, no mean or std' };

/**
 * keras.applications.resnet50.preprocess_input ('caffe'): BGR, minus the ImageNet mean on 0..255,
 * no scaling. The importer folds the RGB→BGR swap into the first conv, so inputs stay RGB.
 */
export const KERAS_CAFFE_PREPROCESS: Preprocess = {
  mean: [123.68 / 255, 116.779 / 255, 103.939 / 255], std: [1 / 255, 1 / 255, 1 / 255],
  note: "keras.applications ResNet50 'caffe' preprocessing (BGR swap folded into conv1)",
};

export interface TfjsImport {
  model: Backbone;
  /** 'mobilenetv2' (with `widthMult`), 'resnet50', or 'resnet' for other Bottleneck layouts. */
  arch: string;
  preprocess: Preprocess;
  /** The file read. */
  source: string;
  /** Weights of the file that the backbone does not use (the dropped head). */
  skipped: string[];
}

export interface TfjsImportOptions {
  /** Classes of the fresh classifier (default 1000). */
  numClasses?: number;
  /** Preprocessing to report when the file's own convention is not the default for its architecture. */
  preprocess?: Preprocess;
}

const quote = (s: string) => JSON.stringify(s);

class Mapper {
  private readonly layers = new Map<string, KerasLayer>();
  private readonly byLayer = new Map<string, Map<string, TfjsWeight>>();
  readonly used = new Set<string>();

  constructor(readonly m: TfjsModel) {
    for (const l of m.layers) this.layers.set(l.name, l);
    // Weight names end in "<layer>/<param>" (possibly under a model's scope and with ":0").
    for (const w of m.weights.values()) {
      const parts = w.name.replace(/:\d+$/, '').split('/');
      if (parts.length < 2) continue;
      const [layer, param] = parts.slice(-2);
      let params = this.byLayer.get(layer);
      if (!params) this.byLayer.set(layer, params = new Map());
      if (params.has(param)) this.fail(`weights ${quote(params.get(param)!.name)} and ${quote(w.name)} both claim ${layer}/${param}`);
      params.set(param, w);
    }
  }

  fail(msg: string): never {
    throw new InputError(`${this.m.label}: ${msg}`);
  }

  has(name: string): boolean {
    return this.layers.has(name);
  }

  layer(name: string, ...classes: string[]): KerasLayer {
    const l = this.layers.get(name);
    if (!l) return this.fail(`architecture mismatch: layer ${quote(name)} is missing`);
    if (classes.length && !classes.includes(l.className)) this.fail(`architecture mismatch: layer ${quote(name)} is ${l.className}, expected ${classes.join(' or ')}`);
    return l;
  }

  num(l: KerasLayer, key: string, dflt?: number): number {
    const v = l.config.get(key) ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) return this.fail(`layer ${quote(l.name)}: config ${key} is not a number`);
    return v;
  }

  pair(l: KerasLayer, key: string, dflt: number): number {
    const v = l.config.get(key);
    if (v === undefined || v === null) return dflt;
    const a = typeof v === 'number' ? [v, v] : v;
    if (!Array.isArray(a) || a.length !== 2 || a[0] !== a[1] || typeof a[0] !== 'number') {
      return this.fail(`layer ${quote(l.name)}: config ${key} ${JSON.stringify(v)} is not a square pair (only square kernels and strides are supported)`);
    }
    return a[0];
  }

  /** The zero padding in front of a layer: [top, left, bottom, right] from a ZeroPadding2D feeding it, else zeros. */
  zeroPadBefore(l: KerasLayer): [number, number, number, number] {
    const src = l.inbound.length === 1 ? this.layers.get(l.inbound[0]) : undefined;
    if (!src || src.className !== 'ZeroPadding2D') return [0, 0, 0, 0];
    const p = src.config.get('padding');
    const num = (x: JsonValue | undefined) => (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : this.fail(`layer ${quote(src.name)}: bad padding ${JSON.stringify(p)}`));
    if (typeof p === 'number') return [num(p), num(p), num(p), num(p)];
    if (!Array.isArray(p) || p.length !== 2) return this.fail(`layer ${quote(src.name)}: bad padding ${JSON.stringify(p)}`);
    const [h, w] = p.map((x) => (Array.isArray(x) && x.length === 2 ? [num(x[0]), num(x[1])] : [num(x), num(x)]));
    return [h[0], w[0], h[1], w[1]];
  }

  weight(layer: string, param: string, shape: number[] | null): TfjsWeight | null {
    const w = this.byLayer.get(layer)?.get(param);
    if (!w) return null;
    if (shape && (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i]))) {
      this.fail(`weight ${quote(w.name)} has shape [${w.shape}], the backbone needs [${shape}]`);
    }
    this.used.add(w.name);
    return w;
  }

  need(layer: string, param: string, shape: number[]): TfjsWeight {
    return this.weight(layer, param, shape) ?? this.fail(`weight ${layer}/${param} is missing`);
  }

  /** A conv kernel's shape [kh, kw, in, out] before the backbone is built from it. */
  kernelShape(layer: string): [number, number, number, number] {
    const w = this.byLayer.get(layer)?.get('kernel') ?? this.fail(`weight ${layer}/kernel is missing`);
    if (w.shape.length !== 4 || w.shape.some((d) => d < 1 || d > 65536)) this.fail(`weight ${quote(w.name)} has shape [${w.shape}], not a conv kernel`);
    return w.shape as [number, number, number, number];
  }

  /**
   * Checks one Keras conv (+ optional ZeroPadding2D) against ours and copies kernel and BN. Keras
   * conv biases (keras.applications' ResNets have them) are folded into the BN, which is exact in
   * inference: BN(x + b) = γ(x + b − μ)/σ + β = BN with running mean μ − b.
   */
  convBn(cb: ConvBn, convName: string, bnName: string, pads: [number, number, number, number], depthwise: boolean): void {
    const conv = cb.conv;
    const l = this.layer(convName, depthwise ? 'DepthwiseConv2D' : 'Conv2D');
    const k = this.pair(l, 'kernel_size', 1), s = this.pair(l, 'strides', 1), d = this.pair(l, 'dilation_rate', 1);
    if (k !== conv.kernelSize || s !== conv.stride || d !== conv.dilation) {
      this.fail(`architecture mismatch: layer ${quote(convName)} is ${k}×${k} stride ${s} dilation ${d}, the backbone has ${conv.kernelSize}×${conv.kernelSize} stride ${conv.stride} dilation ${conv.dilation}`);
    }
    if ((l.config.get('activation') ?? 'linear') !== 'linear') this.fail(`layer ${quote(convName)}: activation ${String(l.config.get('activation'))} inside a conv is not supported`);
    if (depthwise && this.num(l, 'depth_multiplier', 1) !== 1) this.fail(`layer ${quote(convName)}: depth_multiplier ≠ 1 is not supported`);
    if (!depthwise && (l.config.get('groups') ?? 1) !== 1) this.fail(`layer ${quote(convName)}: grouped convolution is not supported`);
    // What Keras pads, as [top, left, bottom, right]: an explicit ZeroPadding2D, or 'same', where TF
    // pads k − s in all (on sizes divisible by the stride) with the odd pixel at the bottom/right.
    const mode = l.config.get('padding') ?? 'valid';
    let kerasPads = this.zeroPadBefore(l);
    if (mode === 'same') {
      if (kerasPads.some((p) => p)) this.fail(`layer ${quote(convName)}: 'same' after a ZeroPadding2D is not supported`);
      const total = Math.max(k - s, 0), top = total >> 1;
      kerasPads = [top, top, total - top, total - top];
    } else if (mode !== 'valid') {
      this.fail(`layer ${quote(convName)}: padding ${JSON.stringify(mode)} is not supported`);
    }
    if (kerasPads.some((p, i) => p !== pads[i])) {
      this.fail(`architecture mismatch: layer ${quote(convName)} pads [${kerasPads}] (top, left, bottom, right), the backbone [${pads}]`);
    }

    const outC = conv.outChannels, inC = conv.inChannels;
    let kernel: Float32Array;
    if (depthwise) {
      // [kh, kw, C, 1] → [C, 1, kh, kw]
      const w = this.need(convName, 'depthwise_kernel', [k, k, inC, 1]).data;
      kernel = new Float32Array(w.length);
      for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) for (let c = 0; c < inC; c++) kernel[(c * k + y) * k + x] = w[(y * k + x) * inC + c];
    } else {
      // [kh, kw, in, out] → [out, in, kh, kw]
      const w = this.need(convName, 'kernel', [k, k, inC, outC]).data;
      kernel = new Float32Array(w.length);
      for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) for (let i = 0; i < inC; i++) {
        const row = ((y * k + x) * inC + i) * outC;
        for (let o = 0; o < outC; o++) kernel[((o * inC + i) * k + y) * k + x] = w[row + o];
      }
    }
    const useBias = l.config.get('use_bias') ?? true;
    const bias = useBias ? this.need(convName, 'bias', [outC]).data : null;

    const bnLayer = this.layer(bnName, 'BatchNormalization');
    const axis = bnLayer.config.get('axis') ?? -1;
    const axisOk = (a: JsonValue) => a === -1 || a === 3;
    if (!(Array.isArray(axis) ? axis.length === 1 && axisOk(axis[0]) : axisOk(axis))) this.fail(`layer ${quote(bnName)}: only channel-last BatchNormalization (axis -1) is supported`);
    const eps = this.num(bnLayer, 'epsilon', 1e-3);
    if (!(eps > 0)) this.fail(`layer ${quote(bnName)}: epsilon must be positive`);
    const gamma = this.weight(bnName, 'gamma', [outC])?.data ?? new Float32Array(outC).fill(1);
    const beta = this.weight(bnName, 'beta', [outC])?.data ?? new Float32Array(outC);
    const mean = Float32Array.from(this.need(bnName, 'moving_mean', [outC]).data);
    const variance = this.need(bnName, 'moving_variance', [outC]).data;
    if (bias) for (let c = 0; c < outC; c++) mean[c] -= bias[c];
    if (variance.some((v) => !(v >= 0))) this.fail(`weight ${bnName}/moving_variance has negative or NaN values`);

    let bn = cb.bn;
    if (Math.abs(bn.eps - eps) > 1e-12 * eps) {
      bn = new BatchNorm2d(outC, { eps, momentum: bn.momentum });
      bn.training = cb.bn.training;
      cb.replace(conv, bn);
      cb.bn.dispose();
    }
    copyInto(conv.weight, kernel);
    copyInto(bn.weight!, gamma);
    copyInto(bn.bias!, beta);
    copyInto(bn.running_mean, mean);
    copyInto(bn.running_var, variance);
  }

  /** A Keras activation layer that must be a ReLU capped at `max` (null: uncapped). */
  relu(name: string, max: number | null): void {
    const l = this.layer(name, 'ReLU', 'Activation');
    const ok = l.className === 'ReLU'
      ? (l.config.get('max_value') ?? null) === max && (l.config.get('negative_slope') ?? 0) === 0 && (l.config.get('threshold') ?? 0) === 0
      : l.config.get('activation') === (max === 6 ? 'relu6' : 'relu') && (max === null || max === 6);
    if (!ok) this.fail(`architecture mismatch: layer ${quote(name)} is not a ReLU${max === null ? '' : `(max ${max})`}`);
  }

  skipped(): string[] {
    return [...this.m.weights.keys()].filter((n) => !this.used.has(n));
  }
}

function copyInto(t: Tensor, data: Float32Array): void {
  noGrad(() => {
    const src = fromTyped(data, 'float32', t.shape);
    try {
      t.copy_(src);
    } finally {
      src.dispose();
    }
  });
}

const ALPHAS = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4];

function importMobileNetV2(m: Mapper, numClasses: number): MobileNetV2 {
  const stem = m.kernelShape('Conv1'), last = m.kernelShape('block_16_project'), head = m.kernelShape('Conv_1');
  const alpha = ALPHAS.find((a) => makeDivisible(32 * a) === stem[3] && makeDivisible(320 * a) === last[3]
    && makeDivisible(1280 * Math.max(1, a)) === head[3]);
  if (alpha === undefined) {
    m.fail(`architecture mismatch: Conv1 has ${stem[3]} filters, block_16_project ${last[3]}, Conv_1 ${head[3]}; no width multiplier among ${ALPHAS.join(', ')} gives that`);
  }
  const inChannels = stem[2];
  const bnEps = m.num(m.layer('bn_Conv1', 'BatchNormalization'), 'epsilon', 1e-3);
  const model = new MobileNetV2({ numClasses, widthMult: alpha, padding: 'keras', bnEps, inChannels });
  try {
    const cbs = model.convBns();
    const padsOf = (c: Conv2d): [number, number, number, number] =>
      'pads' in c ? (c as Conv2d & { pads: [number, number, number, number] }).pads : [c.padding, c.padding, c.padding, c.padding];
    let i = 0;
    const take = (convName: string, bnName: string, depthwise = false) => {
      const cb = cbs[i++];
      m.convBn(cb, convName, bnName, padsOf(cb.conv), depthwise);
    };
    take('Conv1', 'bn_Conv1');
    m.relu('Conv1_relu', 6);
    model.blocks().forEach((b, bi) => {
      const p = bi === 0 ? 'expanded_conv_' : `block_${bi}_`;
      if (bi > 0) { take(`${p}expand`, `${p}expand_BN`); m.relu(`${p}expand_relu`, 6); }
      take(`${p}depthwise`, `${p}depthwise_BN`, true);
      m.relu(`${p}depthwise_relu`, 6);
      take(`${p}project`, `${p}project_BN`);
      if (b.residual !== m.has(`${p}add`)) {
        m.fail(`architecture mismatch: block ${quote(p.slice(0, -1))} ${b.residual ? 'lacks' : 'has'} the residual add ${quote(`${p}add`)}`);
      }
    });
    if (m.has('block_17_project')) m.fail('architecture mismatch: more than 17 inverted-residual blocks');
    take('Conv_1', 'Conv_1_bn');
    m.relu('out_relu', 6);
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * keras.applications' ResNet (v1) naming. Keras puts the stride of a stage's first Bottleneck on
 * its 1×1 conv, torchvision (and our Bottleneck) on the 3×3; the imported model moves it to the
 * 1×1 (ResNet.strideOnFirstConv, names unchanged) so that it computes what Keras computed.
 */
function importResNet(m: Mapper, numClasses: number): { model: ResNet; arch: string } {
  const blocks: number[] = [], widths: number[] = [];
  for (let stage = 2; m.has(`conv${stage}_block1_1_conv`); stage++) {
    let n = 0;
    while (m.has(`conv${stage}_block${n + 1}_1_conv`)) n++;
    blocks.push(n);
    widths.push(m.kernelShape(`conv${stage}_block1_1_conv`)[3]);
  }
  if (blocks.length === 0) m.fail('architecture mismatch: no conv2_block1_1_conv');
  if (m.has('conv2_block1_3_conv') === false) m.fail('architecture mismatch: only Bottleneck ResNets (conv*_block*_3_conv) are supported');
  const stem = m.kernelShape('conv1_conv');
  const model = new ResNet({ blocks, widths, stem: 'imagenet', block: 'bottleneck', stemWidth: stem[3], inChannels: stem[2], numClasses });
  try {
    const pool = m.layer('pool1_pool', 'MaxPooling2D');
    if (m.pair(pool, 'pool_size', 2) !== 3 || m.pair(pool, 'strides', 3) !== 2 || m.zeroPadBefore(pool).some((p) => p !== 1)) {
      m.fail('architecture mismatch: pool1 must be ZeroPadding2D(1) + 3×3 stride-2 max-pool');
    }
    model.strideOnFirstConv();
    const cbs = model.convBns();
    m.convBn(cbs[0], 'conv1_conv', 'conv1_bn', [3, 3, 3, 3], false);
    m.relu('conv1_relu', null);
    // Keras feeds BGR: swapping conv1's input channels lets the model take RGB.
    if (stem[2] === 3) noGrad(() => { const w = model.conv1.weight.flip(1); model.conv1.weight.copy_(w); w.dispose(); });
    for (const b of model.blocks()) {
      const stage = b.stage + 2, j = Number(b.key) + 1;
      const p = `conv${stage}_block${j}_`;
      const [c1, c2, c3] = b.convs;
      m.convBn(c1, `${p}1_conv`, `${p}1_bn`, [0, 0, 0, 0], false);
      m.relu(`${p}1_relu`, null);
      m.convBn(c2, `${p}2_conv`, `${p}2_bn`, [1, 1, 1, 1], false);
      m.relu(`${p}2_relu`, null);
      m.convBn(c3, `${p}3_conv`, `${p}3_bn`, [0, 0, 0, 0], false);
      if (!m.has(`${p}add`)) m.fail(`architecture mismatch: layer ${quote(`${p}add`)} is missing`);
      if (b.shortcut) m.convBn(b.shortcut, `${p}0_conv`, `${p}0_bn`, [0, 0, 0, 0], false);
      else if (m.has(`${p}0_conv`)) m.fail(`architecture mismatch: ${quote(`${p}0_conv`)} is a projection where the backbone has an identity shortcut`);
    }
    const isR50 = blocks.join() === '3,4,6,3' && widths.join() === '64,128,256,512' && stem[3] === 64;
    return { model, arch: isR50 ? 'resnet50' : 'resnet' };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** Maps an already read TF.js model onto a backbone (see importTfjs). */
export function importTfjsModel(tf: TfjsModel, opts: TfjsImportOptions = {}): TfjsImport {
  const numClasses = opts.numClasses ?? 1000;
  if (!Number.isSafeInteger(numClasses) || numClasses < 1) throw new InputError(`numClasses must be a positive integer, got ${numClasses}`);
  const m = new Mapper(tf);
  let out: { model: Backbone; arch: string; preprocess: Preprocess };
  if (m.has('Conv1') && m.has('block_1_expand')) {
    out = { model: importMobileNetV2(m, numClasses), arch: 'mobilenetv2', preprocess: NSFWJS_PREPROCESS };
  } else if (m.has('conv1_conv') && m.has('conv2_block1_1_conv')) {
    out = { ...importResNet(m, numClasses), preprocess: KERAS_CAFFE_PREPROCESS };
  } else {
    return m.fail('not a recognised architecture (keras.applications MobileNetV2 with Conv1/block_N_*, or ResNet with conv1_conv/convS_blockB_*)');
  }
  return { ...out, preprocess: opts.preprocess ?? out.preprocess, source: tf.label, skipped: m.skipped() };
}

/**
 * Reads a TF.js LayersModel (a folder, `model.json`, or a wrapped `model.min.js` as nsfwjs ships)
 * and returns its backbone with a fresh classifier of `numClasses` outputs, in eval mode.
 */
export function importTfjs(p: string, opts: TfjsImportOptions = {}): TfjsImport {
  const r = importTfjsModel(readTfjsModel(p), opts);
  r.model.eval();
  return r;
}

/** The folder of nsfwjs's MobileNetV2 model files (the npm package must be installed). */
export function nsfwjsMobileNetV2Dir(): string {
  // nsfwjs's "exports" hides package.json from require.resolve: look where Node would look instead.
  for (const dir of require.resolve.paths('nsfwjs') ?? []) {
    if (fs.existsSync(path.join(dir, 'nsfwjs', 'package.json'))) return path.join(dir, 'nsfwjs', 'dist', 'models', 'mobilenet_v2');
  }
  throw new InputError('the nsfwjs package is not installed (npm install nsfwjs@4.4.0)');
}

/** nsfwjs's ImageNet-initialised MobileNetV2 (α 1.0) backbone with a fresh `numClasses` head; input x in [0, 1]. */
export function loadNsfwjsMobileNetV2(numClasses: number): TfjsImport {
  return importTfjs(path.join(nsfwjsMobileNetV2Dir(), 'model.min.js'), { numClasses });
}
