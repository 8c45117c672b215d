import { Tensor } from '../engine/tensor';
import { Module } from '../nn/module';
import { Conv2d } from '../nn/conv';
import { BatchNorm2d } from '../nn/batchnorm';
import { Linear } from '../nn/linear';
import { Sequential } from '../nn/sequential';
import { Dropout, ReLU6 } from '../nn/basic';
import * as F from '../nn/functional';
import { constant_, kaimingNormal_, normal_ } from '../nn/init';
import type { OnnxEmitter } from '../io/onnx/export';
import type { ArchFamily } from './arch-options';
import { isPositive } from './option-checks';
import { Backbone, BlockInfo, ConvBn, cloneBlock, convBn } from './backbone';
import { FeaturesClassifierNet } from './features-classifier';
import { PaddedConv2d } from './padded-conv';

/** torchvision's _make_divisible: nearest multiple of `divisor`, never more than 10% below v. */
export function makeDivisible(v: number, divisor = 8): number {
  let n = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}

/** How convolutions pad: 'torch' pads (k−1)/2 on every side; 'keras' as keras.applications' MobileNetV2. */
export type MobileNetV2Padding = 'torch' | 'keras';

/** Per-model choices that every conv-BN of the network shares. */
export interface LayerStyle {
  padding: MobileNetV2Padding;
  bnEps: number;
}

const TORCH_STYLE: LayerStyle = { padding: 'torch', bnEps: 1e-5 };

/**
 * A k×k convolution without bias. keras.applications pads its stride-2 3×3 convolutions with
 * ZeroPadding2D((0,1),(0,1)) (its correct_pad for the even 224 px build size; equal to TF 'same' on
 * every even input), i.e. one row and column at the bottom/right only, so a stride-2 window starts
 * at pixel 0 instead of −1. Those become PaddedConv2d with pads [0, 0, 1, 1]; stride-1 'same' is
 * symmetric and stays a plain Conv2d.
 */
function makeConv(inC: number, outC: number, k: number, stride: number, groups: number, style: LayerStyle): Conv2d {
  const pad = (k - 1) >> 1;
  if (style.padding === 'keras' && stride > 1 && k > 1) {
    return new PaddedConv2d(inC, outC, k, [pad - 1, pad - 1, pad, pad], { stride, groups, bias: false });
  }
  return new Conv2d(inC, outC, k, { stride, padding: pad, groups, bias: false });
}

/** conv → BN → ReLU6 as torchvision's Conv2dNormActivation: children "0" (conv), "1" (bn), "2" (act). */
function convBnAct(inC: number, outC: number, k: number, stride = 1, groups = 1, style: LayerStyle = TORCH_STYLE): Sequential {
  return new Sequential(
    makeConv(inC, outC, k, stride, groups, style),
    new BatchNorm2d(outC, { eps: style.bnEps }),
    new ReLU6(),
  );
}

/**
 * MobileNetV2's inverted residual: [1×1 expand → BN → ReLU6] (absent when t = 1), 3×3 depthwise →
 * BN → ReLU6, 1×1 linear projection → BN; adds the input when stride 1 and channels are unchanged.
 * Names as torchvision: conv.0.0 / conv.0.1 (expand), conv.1.0 / conv.1.1 (depthwise), conv.2
 * (project), conv.3 (its BN); with t = 1: conv.0.* depthwise, conv.1 project, conv.2 BN.
 */
export class InvertedResidual extends Module {
  conv: Sequential;
  readonly hidden: number;
  readonly useResidual: boolean;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly stride: number, readonly expandRatio: number,
    style: LayerStyle = TORCH_STYLE) {
    super();
    this.hidden = Math.round(inChannels * expandRatio);
    this.useResidual = stride === 1 && inChannels === outChannels;
    const layers: Module[] = [];
    if (expandRatio !== 1) layers.push(convBnAct(inChannels, this.hidden, 1, 1, 1, style));
    layers.push(convBnAct(this.hidden, this.hidden, 3, stride, this.hidden, style));
    layers.push(new Conv2d(this.hidden, outChannels, 1, { bias: false }), new BatchNorm2d(outChannels, { eps: style.bnEps }));
    this.conv = new Sequential(...layers);
  }

  forward(x: Tensor): Tensor {
    const y = this.conv.forward(x);
    return this.useResidual ? x.add(y) : y;
  }

  toOnnx(e: OnnxEmitter, x: string, n: string): string {
    const y = e.emit(this.conv, x);
    return this.useResidual ? e.g.one('Add', [x, y], `${n}/add`) : y;
  }

  /** A copy with its own weights, Keras pads and BN eps included. */
  clone(): InvertedResidual {
    return cloneBlock(this, new InvertedResidual(this.inChannels, this.outChannels, this.stride, this.expandRatio), (b) => b.convBns(''));
  }

  /** The conv/bn pairs in order, with state-dict names under `prefix` (e.g. 'features.3.'). */
  convBns(prefix: string): ConvBn[] {
    const seq = this.conv as unknown as Record<string, Sequential>;
    const out: ConvBn[] = [];
    let i = 0;
    if (this.expandRatio !== 1) {
      out.push(convBn(seq[0], '0', '1', `${prefix}conv.0.0`, `${prefix}conv.0.1`, 'block', 'expand'));
      i = 1;
    }
    out.push(convBn(seq[i], '0', '1', `${prefix}conv.${i}.0`, `${prefix}conv.${i}.1`, 'block', 'depthwise'));
    out.push(convBn(this.conv, String(i + 1), String(i + 2), `${prefix}conv.${i + 1}`, `${prefix}conv.${i + 2}`, 'block', 'project'));
    return out;
  }
}

/** (expansion t, channels c, repeats n, first stride s), from the paper's Table 2. */
export const MOBILENETV2_SETTING: readonly [number, number, number, number][] = [
  [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
];

/**
 * timm's MobileNetV2 names → torchvision's (ours). timm groups blocks by stage (blocks.S.J) and
 * names layers conv_pw / conv_dw / conv_pwl; the first block (t = 1) is a DepthwiseSeparableConv
 * with conv_dw / conv_pw. Returns null for a name it does not know.
 */
export function timmMobileNetV2Name(name: string): string | null {
  let m = /^(conv_stem|bn1|conv_head|bn2)\.(.+)$/.exec(name);
  if (m) {
    const base = { conv_stem: 'features.0.0', bn1: 'features.0.1', conv_head: 'features.18.0', bn2: 'features.18.1' }[m[1]];
    return `${base}.${m[2]}`;
  }
  m = /^classifier\.(weight|bias)$/.exec(name);
  if (m) return `classifier.1.${m[1]}`;
  m = /^blocks\.(\d+)\.(\d+)\.([a-z_0-9]+)\.(.+)$/.exec(name);
  if (!m) return null;
  const stage = Number(m[1]), j = Number(m[2]);
  if (stage >= MOBILENETV2_SETTING.length || j >= MOBILENETV2_SETTING[stage][2]) return null;
  const idx = 1 + MOBILENETV2_SETTING.slice(0, stage).reduce((a, s) => a + s[2], 0) + j;
  const layers: Record<string, string> = stage === 0
    ? { conv_dw: 'conv.0.0', bn1: 'conv.0.1', conv_pw: 'conv.1', bn2: 'conv.2' }
    : { conv_pw: 'conv.0.0', bn1: 'conv.0.1', conv_dw: 'conv.1.0', bn2: 'conv.1.1', conv_pwl: 'conv.2', bn3: 'conv.3' };
  const l = layers[m[3]];
  return l ? `features.${idx}.${l}.${m[4]}` : null;
}

export interface MobileNetV2Config {
  numClasses: number;
  /** Width multiplier α (default 1.0); channels are rounded to multiples of 8 as torchvision does. */
  widthMult?: number;
  /** Dropout before the classifier (default 0.2, torchvision's). */
  dropout?: number;
  inChannels?: number;
  /**
   * 'torch' (default): symmetric padding everywhere, as torchvision. 'keras': stride-2 3×3 convs pad
   * bottom/right only (PaddedConv2d, pads [0, 0, 1, 1]), as keras.applications' MobileNetV2, so that
   * Keras weights (e.g. nsfwjs's) compute what they computed there.
   */
  padding?: MobileNetV2Padding;
  /** BatchNorm epsilon of every BN (default 1e-5, PyTorch's; Keras uses 1e-3). */
  bnEps?: number;
}

/**
 * MobileNetV2 (Sandler et al. 2018) with torchvision's module tree and names: features.0 (stem
 * conv-BN-ReLU6, stride 2), features.1–17 (inverted residuals), features.18 (1×1 to 1280·max(1,α)),
 * global average pooling, classifier.0 (dropout), classifier.1 (linear). Any input size ≥ 32 px.
 */
export class MobileNetV2 extends FeaturesClassifierNet implements Backbone {
  readonly family = 'mobilenetv2';
  readonly featureDim: number;
  readonly widthMult: number;
  readonly padding: MobileNetV2Padding;

  constructor(readonly config: MobileNetV2Config) {
    super();
    const a = this.widthMult = config.widthMult ?? 1;
    if (!(a > 0)) throw new Error(`MobileNetV2: width multiplier must be positive, got ${a}`);
    const style: LayerStyle = { padding: this.padding = config.padding ?? 'torch', bnEps: config.bnEps ?? 1e-5 };
    if (style.padding !== 'torch' && style.padding !== 'keras') throw new Error(`MobileNetV2: padding must be 'torch' or 'keras', got ${String(style.padding)}`);
    if (!(style.bnEps > 0)) throw new Error(`MobileNetV2: bnEps must be positive, got ${style.bnEps}`);
    let input = makeDivisible(32 * a);
    this.featureDim = makeDivisible(1280 * Math.max(1, a));
    const layers: Module[] = [convBnAct(config.inChannels ?? 3, input, 3, 2, 1, style)];
    for (const [t, c, n, s] of MOBILENETV2_SETTING) {
      const out = makeDivisible(c * a);
      for (let i = 0; i < n; i++) {
        layers.push(new InvertedResidual(input, out, i === 0 ? s : 1, t, style));
        input = out;
      }
    }
    layers.push(convBnAct(input, this.featureDim, 1, 1, 1, style));
    this.assemble(layers, config.dropout ?? 0.2, config.numClasses);
  }

  protected newHead(numClasses: number): Linear {
    const fc = new Linear(this.featureDim, numClasses);
    normal_(fc.weight, 0, 0.01);
    constant_(fc.bias!, 0);
    return fc;
  }

  /** timm's name of a parameter or buffer → ours (torchvision's); null for a name it does not know. */
  fromTimmName(name: string): string | null {
    return timmMobileNetV2Name(name);
  }

  blocks(): BlockInfo[] {
    const out: BlockInfo[] = [];
    let idx = 1;
    MOBILENETV2_SETTING.forEach(([, , n], stage) => {
      for (let j = 0; j < n; j++, idx++) {
        const b = this.layer(idx);
        if (!(b instanceof InvertedResidual)) continue;
        const key = String(idx);
        out.push({
          name: `features.${key}`, module: b, stage, inChannels: b.inChannels, outChannels: b.outChannels, stride: b.stride,
          residual: b.useResidual, convs: b.convBns(`features.${key}.`), shortcut: null,
          parent: this.features_, key,
          replace: (m: Module) => { (this.features_ as unknown as Record<string, Module>)[key] = m; },
        });
      }
    });
    return out;
  }

  convBns(): ConvBn[] {
    const stem = this.layer(0), last = this.layer(18);
    return [
      convBn(stem, '0', '1', 'features.0.0', 'features.0.1', 'stem', 'conv'),
      ...this.blocks().flatMap((b) => b.convs),
      convBn(last, '0', '1', 'features.18.0', 'features.18.1', 'head', 'conv'),
    ];
  }

}

/** A MobileNetV2's architecture options (arch-options.ts): width, padding style and input channels. */
export interface MobileNetV2ArchOptions {
  family: 'mobilenetv2';
  widthMult: number;
  padding: MobileNetV2Padding;
  inChannels: number;
}

export const MOBILENETV2_ARCH: ArchFamily<MobileNetV2ArchOptions> = {
  family: 'mobilenetv2',
  describe(model) {
    if (!(model instanceof MobileNetV2)) return null;
    const options: MobileNetV2ArchOptions = { family: 'mobilenetv2', widthMult: model.widthMult, padding: model.padding, inChannels: model.config.inChannels ?? 3 };
    const name = model.widthMult === 1 ? 'mobilenetv2' : `mobilenetv2-${model.widthMult}`;
    return { options, name, fallback: 'mobilenetv2', asBuilt: options.padding === 'torch' && options.inChannels === 3 };
  },
  check(o, bad) {
    if (!isPositive(o.widthMult) || (o.widthMult as number) > 4) bad('widthMult must be a number in (0, 4]');
    if (o.padding !== 'torch' && o.padding !== 'keras') bad("padding must be 'torch' or 'keras'");
    if (o.inChannels !== 1 && o.inChannels !== 3) bad('inChannels must be 1 or 3');
  },
  build(o, numClasses) {
    return new MobileNetV2({ numClasses, widthMult: o.widthMult, padding: o.padding, bnEps: o.bnEps, inChannels: o.inChannels });
  },
};
