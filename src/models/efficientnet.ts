/**
 * EfficientNet (Tan & Le 2019), B0 and its width/depth scalings, with torchvision's module tree
 * and names, so that torchvision's `efficientnet_b0` state dict loads as it is (timm's names are
 * mapped below). Everything this family owns lives here: construction, the structure methods of a
 * Backbone, `clone()` of its blocks, `toOnnx`, the timm name map and its architecture options.
 */
import { aten, Tensor } from '../engine/tensor';
import { newFull } from '../engine/creation';
import { perExample } from '../engine/random';
import { Module } from '../nn/module';
import { Conv2d } from '../nn/conv';
import { BatchNorm2d } from '../nn/batchnorm';
import { Linear } from '../nn/linear';
import { Sequential } from '../nn/sequential';
import { Dropout } from '../nn/basic';
import * as F from '../nn/functional';
import { constant_, kaimingNormal_, uniform_ } from '../nn/init';
import type { OnnxEmitter } from '../io/onnx/export';
import type { ArchFamily } from './arch-options';
import { isPositive } from './option-checks';
import { Backbone, BlockInfo, ConvBn, cloneBlock, convBn } from './backbone';
import { FeaturesClassifierNet } from './features-classifier';
import { makeDivisible } from './mobilenetv2';

const silu = (x: Tensor): Tensor => aten('aten::silu', '', [x]);

/** x·sigmoid(x) in the graph: ONNX before opset 22 has no SiLU operator. */
function siluOnnx(e: OnnxEmitter, x: string, n: string): string {
  return e.g.one('Mul', [x, e.g.one('Sigmoid', [x], `${n}/sigmoid`)], `${n}/silu`);
}

/** x·sigmoid(x) (Swish), as a layer of a Sequential. */
export class SiLU extends Module {
  forward(x: Tensor): Tensor { return silu(x); }

  toOnnx(e: OnnxEmitter, x: string, n: string): string { return siluOnnx(e, x, n); }
}

/** conv → BN [→ SiLU], as torchvision's Conv2dNormActivation: children "0" (conv), "1" (bn), "2" (act). */
function convBnAct(inC: number, outC: number, k: number, stride = 1, groups = 1, act = true): Sequential {
  const layers: Module[] = [new Conv2d(inC, outC, k, { stride, padding: (k - 1) >> 1, groups, bias: false }), new BatchNorm2d(outC)];
  if (act) layers.push(new SiLU());
  return new Sequential(...layers);
}

/**
 * Squeeze-and-excitation (torchvision's SqueezeExcitation): the global average of each channel,
 * 1×1 conv to `squeeze` channels, SiLU, 1×1 conv back, sigmoid, times the input. Names fc1, fc2.
 */
export class SqueezeExcitation extends Module {
  fc1: Conv2d;
  fc2: Conv2d;

  constructor(channels: number, squeeze: number) {
    super();
    this.fc1 = new Conv2d(channels, squeeze, 1);
    this.fc2 = new Conv2d(squeeze, channels, 1);
  }

  forward(x: Tensor): Tensor {
    const s = this.fc2.forward(silu(this.fc1.forward(x.mean([2, 3], true))));
    return x.mul(F.sigmoid(s));
  }

  toOnnx(e: OnnxEmitter, x: string, n: string): string {
    const pooled = e.g.one('GlobalAveragePool', [x], `${n}/pool`);
    const h = e.emit(this.fc2, siluOnnx(e, e.emit(this.fc1, pooled), `${n}.act`));
    return e.g.one('Mul', [x, e.g.one('Sigmoid', [h], `${n}/scale`)], `${n}/mul`);
  }
}

/**
 * EfficientNet's MBConv: [1×1 expand → BN → SiLU] (absent when the ratio is 1), k×k depthwise → BN →
 * SiLU, squeeze-excitation, 1×1 linear projection → BN; adds the input back when stride 1 and
 * channels are unchanged, the residual branch then dropped per example with probability
 * `stochasticDepth` in training (torchvision's StochasticDepth 'row'; nothing in eval).
 * Names as torchvision: block.0.0/.1 expand, block.1.0/.1 depthwise, block.2.fc1/fc2 SE, block.3.0/.1
 * project; with ratio 1: block.0 depthwise, block.1 SE, block.2 project.
 */
export class MBConv extends Module {
  block: Sequential;
  readonly hidden: number;
  readonly useResidual: boolean;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly expandRatio: number,
    readonly kernel: number, readonly stride: number, readonly stochasticDepth: number) {
    super();
    this.hidden = makeDivisible(inChannels * expandRatio);
    this.useResidual = stride === 1 && inChannels === outChannels;
    const layers: Module[] = [];
    if (this.hidden !== inChannels) layers.push(convBnAct(inChannels, this.hidden, 1));
    layers.push(convBnAct(this.hidden, this.hidden, kernel, stride, this.hidden));
    // torchvision squeezes to a quarter of the block's input, not of its expanded width.
    layers.push(new SqueezeExcitation(this.hidden, Math.max(1, Math.floor(inChannels / 4))));
    layers.push(convBnAct(this.hidden, outChannels, 1, 1, 1, false));
    this.block = new Sequential(...layers);
  }

  get expands(): boolean { return this.hidden !== this.inChannels; }

  forward(x: Tensor): Tensor {
    const y = this.block.forward(x);
    if (!this.useResidual) return y;
    if (!this.training || this.stochasticDepth === 0) return y.add(x);
    const survival = 1 - this.stochasticDepth;
    // Per example (perExample): a data-parallel rank keeps its rows of the global batch's draw.
    const keep = perExample([y.size(0), 1, 1, 1], 0, (s) => aten('aten::bernoulli', 'p', [newFull(y, s, 0), survival]) as Tensor);
    return y.mul(keep.div(survival)).add(x);
  }

  toOnnx(e: OnnxEmitter, x: string, n: string): string {
    const y = e.emit(this.block, x);
    return this.useResidual ? e.g.one('Add', [y, x], `${n}/add`) : y;
  }

  /** A copy with its own weights and layer settings as they are now (e.g. an imported BN eps). */
  clone(): MBConv {
    const fresh = new MBConv(this.inChannels, this.outChannels, this.expandRatio, this.kernel, this.stride, this.stochasticDepth);
    return cloneBlock(this, fresh, (b) => b.convBns(''));
  }

  /** The conv/bn pairs in order (SE's 1×1 convs have no BN and are not among them), names under `prefix`. */
  convBns(prefix: string): ConvBn[] {
    const seq = this.block as unknown as Record<string, Sequential>;
    const out: ConvBn[] = [];
    let i = 0;
    if (this.expands) out.push(convBn(seq[i++], '0', '1', `${prefix}block.0.0`, `${prefix}block.0.1`, 'block', 'expand'));
    out.push(convBn(seq[i], '0', '1', `${prefix}block.${i}.0`, `${prefix}block.${i}.1`, 'block', 'depthwise'));
    i += 2;
    out.push(convBn(seq[i], '0', '1', `${prefix}block.${i}.0`, `${prefix}block.${i}.1`, 'block', 'project'));
    return out;
  }
}

/** B0's stages: (expand ratio, kernel, first stride, input channels, output channels, blocks), torchvision's table. */
export const EFFICIENTNET_B0_SETTING: readonly [number, number, number, number, number, number][] = [
  [1, 3, 1, 32, 16, 1], [6, 3, 2, 16, 24, 2], [6, 5, 2, 24, 40, 2], [6, 3, 2, 40, 80, 3],
  [6, 5, 1, 80, 112, 3], [6, 5, 2, 112, 192, 4], [6, 3, 1, 192, 320, 1],
];

export interface EfficientNetConfig {
  numClasses: number;
  /** Channel multiplier (B0: 1), channels rounded to multiples of 8 as torchvision does. */
  widthMult?: number;
  /** Block-count multiplier (B0: 1), rounded up per stage. */
  depthMult?: number;
  /** Dropout before the classifier (B0: 0.2). */
  dropout?: number;
  /** Largest stochastic-depth probability, reached by the last block (torchvision: 0.2). */
  stochasticDepth?: number;
  inChannels?: number;
}

/**
 * timm's EfficientNet names → torchvision's (ours). timm numbers stages from 0 (blocks.S.J, ours
 * features.S+1.J), names layers conv_pw / conv_dw / conv_pwl / bn1..3 and the SE's convs
 * se.conv_reduce / se.conv_expand; the first stage (ratio 1) is a DepthwiseSeparableConv (conv_dw,
 * bn1, se, conv_pw, bn2). Null for a name it does not know.
 */
export function timmEfficientNetName(name: string): string | null {
  let m = /^(conv_stem|bn1|conv_head|bn2)\.(.+)$/.exec(name);
  if (m) return `${{ conv_stem: 'features.0.0', bn1: 'features.0.1', conv_head: 'features.8.0', bn2: 'features.8.1' }[m[1]]}.${m[2]}`;
  m = /^classifier\.(weight|bias)$/.exec(name);
  if (m) return `classifier.1.${m[1]}`;
  m = /^blocks\.(\d+)\.(\d+)\.((?:se\.)?[a-z_0-9]+)\.([a-z_]+)$/.exec(name);
  if (!m || Number(m[1]) >= EFFICIENTNET_B0_SETTING.length) return null;
  const layers: Record<string, string> = m[1] === '0'
    ? { conv_dw: '0.0', bn1: '0.1', 'se.conv_reduce': '1.fc1', 'se.conv_expand': '1.fc2', conv_pw: '2.0', bn2: '2.1' }
    : { conv_pw: '0.0', bn1: '0.1', conv_dw: '1.0', bn2: '1.1', 'se.conv_reduce': '2.fc1', 'se.conv_expand': '2.fc2', conv_pwl: '3.0', bn3: '3.1' };
  const l = layers[m[3]];
  return l ? `features.${Number(m[1]) + 1}.${m[2]}.block.${l}.${m[4]}` : null;
}

/**
 * EfficientNet with torchvision's tree: features.0 (3×3/2 stem conv-BN-SiLU), features.1–7 (stages
 * of MBConv blocks, features.S.J), features.8 (1×1 to 4× the last stage's width, 1280 for B0),
 * global average pooling, classifier.0 (dropout), classifier.1 (linear). BN eps 1e-5 (B0–B4).
 */
export class EfficientNet extends FeaturesClassifierNet implements Backbone {
  readonly family = 'efficientnet';
  readonly featureDim: number;
  readonly widthMult: number;
  readonly depthMult: number;

  constructor(readonly config: EfficientNetConfig) {
    super();
    const w = this.widthMult = config.widthMult ?? 1, d = this.depthMult = config.depthMult ?? 1;
    if (!(w > 0) || !(d > 0)) throw new Error(`EfficientNet: width and depth multipliers must be positive, got ${w}, ${d}`);
    const sd = config.stochasticDepth ?? 0.2;
    if (!(sd >= 0 && sd < 1)) throw new Error(`EfficientNet: stochasticDepth must be in [0, 1), got ${sd}`);
    const stages = EFFICIENTNET_B0_SETTING.map(([t, k, s, cin, cout, n]) => ({ t, k, s, cin: makeDivisible(cin * w), cout: makeDivisible(cout * w), n: Math.ceil(n * d) }));
    const total = stages.reduce((a, st) => a + st.n, 0);
    let id = 0;
    const layers: Module[] = [convBnAct(config.inChannels ?? 3, stages[0].cin, 3, 2)];
    for (const st of stages) {
      layers.push(new Sequential(...Array.from({ length: st.n }, (_, j) =>
        new MBConv(j === 0 ? st.cin : st.cout, st.cout, st.t, st.k, j === 0 ? st.s : 1, (sd * id++) / total))));
    }
    const last = stages[stages.length - 1].cout;
    this.featureDim = 4 * last;
    layers.push(convBnAct(last, this.featureDim, 1));
    this.assemble(layers, config.dropout ?? 0.2, config.numClasses);
  }

  protected newHead(numClasses: number): Linear {
    const fc = new Linear(this.featureDim, numClasses);
    const r = 1 / Math.sqrt(numClasses);
    uniform_(fc.weight, -r, r);
    constant_(fc.bias!, 0);
    return fc;
  }

  /** timm's name of a parameter or buffer → ours (torchvision's); null for a name it does not know. */
  fromTimmName(name: string): string | null {
    return timmEfficientNetName(name);
  }

  blocks(): BlockInfo[] {
    const out: BlockInfo[] = [];
    for (let s = 1; s <= EFFICIENTNET_B0_SETTING.length; s++) {
      const stage = this.layer(s);
      for (const [key, b] of stage.namedChildren()) {
        if (!(b instanceof MBConv)) continue;
        const name = `features.${s}.${key}`;
        out.push({
          name, module: b, stage: s - 1, inChannels: b.inChannels, outChannels: b.outChannels, stride: b.stride,
          residual: b.useResidual, convs: b.convBns(`${name}.`), shortcut: null, parent: stage, key,
          replace: (m: Module) => { (stage as unknown as Record<string, Module>)[key] = m; },
        });
      }
    }
    return out;
  }

  convBns(): ConvBn[] {
    const head = EFFICIENTNET_B0_SETTING.length + 1;
    return [
      convBn(this.layer(0), '0', '1', 'features.0.0', 'features.0.1', 'stem', 'conv'),
      ...this.blocks().flatMap((b) => b.convs),
      convBn(this.layer(head), '0', '1', `features.${head}.0`, `features.${head}.1`, 'head', 'conv'),
    ];
  }

}

/** An EfficientNet's architecture options (arch-options.ts): its scaling and input channels. */
export interface EfficientNetArchOptions {
  family: 'efficientnet';
  widthMult: number;
  depthMult: number;
  inChannels: number;
}

export const EFFICIENTNET_ARCH: ArchFamily<EfficientNetArchOptions> = {
  family: 'efficientnet',
  describe(model) {
    if (!(model instanceof EfficientNet)) return null;
    const options: EfficientNetArchOptions = { family: 'efficientnet', widthMult: model.widthMult, depthMult: model.depthMult, inChannels: model.config.inChannels ?? 3 };
    const b0 = options.widthMult === 1 && options.depthMult === 1;
    return { options, name: 'efficientnet-b0', fallback: 'efficientnet-b0', asBuilt: b0 && options.inChannels === 3 };
  },
  check(o, bad) {
    if (!isPositive(o.widthMult) || (o.widthMult as number) > 4) bad('widthMult must be a number in (0, 4]');
    if (!isPositive(o.depthMult) || (o.depthMult as number) > 4) bad('depthMult must be a number in (0, 4]');
    if (o.inChannels !== 1 && o.inChannels !== 3) bad('inChannels must be 1 or 3');
  },
  build(o, numClasses) {
    return new EfficientNet({ numClasses, widthMult: o.widthMult, depthMult: o.depthMult, inChannels: o.inChannels });
  },
};
