import { Tensor } from '../engine/tensor';
import { chain, release } from '../engine/scope';
import { Module } from '../nn/module';
import { Conv2d } from '../nn/conv';
import { BatchNorm2d } from '../nn/batchnorm';
import { Linear } from '../nn/linear';
import { Sequential } from '../nn/sequential';
import * as F from '../nn/functional';
import { constant_, kaimingNormal_ } from '../nn/init';
import type { OnnxEmitter } from '../io/onnx/export';
import type { ArchFamily } from './arch-options';
import { isIntList } from './option-checks';
import { Backbone, BlockInfo, ConvBn, cloneBlock, convBn } from './backbone';

/** Projection shortcut (1×1 conv + BN) wherever the shape changes, identity elsewhere (torchvision's rule). */
function projection(inPlanes: number, outPlanes: number, stride: number): Sequential | null {
  return stride !== 1 || inPlanes !== outPlanes
    ? new Sequential(new Conv2d(inPlanes, outPlanes, 1, { stride, bias: false }), new BatchNorm2d(outPlanes))
    : null;
}

/** Two 3×3 convolutions. Parameter names follow torchvision (conv1, bn1, conv2, bn2, downsample.0/1). */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  downsample: Sequential | null;

  constructor(readonly inPlanes: number, readonly planes: number, readonly stride = 1) {
    super();
    this.conv1 = new Conv2d(inPlanes, planes, 3, { stride, padding: 1, bias: false });
    this.bn1 = new BatchNorm2d(planes);
    this.conv2 = new Conv2d(planes, planes, 3, { padding: 1, bias: false });
    this.bn2 = new BatchNorm2d(planes);
    this.downsample = projection(inPlanes, planes, stride);
  }

  get outPlanes(): number { return this.planes; }

  forward(x: Tensor): Tensor {
    const out = chain(x, this.conv1, this.bn1, F.relu, this.conv2, this.bn2);
    return residual(out, this.downsample ? this.downsample.forward(x) : x, x);
  }

  toOnnx(e: OnnxEmitter, x: string, n: string): string {
    const h = e.emit(this.bn2, e.emit(this.conv2, e.relu(e.emit(this.bn1, e.emit(this.conv1, x)), `${n}.relu1`)));
    return residualOnnx(e, this, h, x, n);
  }

  /** A copy with its own weights, layer settings as they are now (e.g. an imported BN eps). */
  clone(): BasicBlock {
    return cloneBlock(this, new BasicBlock(this.inPlanes, this.planes, this.stride), allConvBns);
  }
}

/**
 * 1×1 reduce, 3×3 (carrying the stride, as torchvision's "ResNet v1.5"), 1×1 expand ×4.
 * Names: conv1/bn1, conv2/bn2, conv3/bn3, downsample.0/1.
 */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  conv3: Conv2d;
  bn3: BatchNorm2d;
  downsample: Sequential | null;

  constructor(readonly inPlanes: number, readonly planes: number, readonly stride = 1) {
    super();
    const out = planes * Bottleneck.expansion;
    this.conv1 = new Conv2d(inPlanes, planes, 1, { bias: false });
    this.bn1 = new BatchNorm2d(planes);
    this.conv2 = new Conv2d(planes, planes, 3, { stride, padding: 1, bias: false });
    this.bn2 = new BatchNorm2d(planes);
    this.conv3 = new Conv2d(planes, out, 1, { bias: false });
    this.bn3 = new BatchNorm2d(out);
    this.downsample = projection(inPlanes, out, stride);
  }

  get outPlanes(): number { return this.planes * Bottleneck.expansion; }

  forward(x: Tensor): Tensor {
    const out = chain(x, this.conv1, this.bn1, F.relu, this.conv2, this.bn2, F.relu, this.conv3, this.bn3);
    return residual(out, this.downsample ? this.downsample.forward(x) : x, x);
  }

  toOnnx(e: OnnxEmitter, x: string, n: string): string {
    let h = e.relu(e.emit(this.bn1, e.emit(this.conv1, x)), `${n}.relu1`);
    h = e.relu(e.emit(this.bn2, e.emit(this.conv2, h)), `${n}.relu2`);
    return residualOnnx(e, this, e.emit(this.bn3, e.emit(this.conv3, h)), x, n);
  }

  /** A copy with its own weights, layer settings as they are now (e.g. a Keras stride on conv1). */
  clone(): Bottleneck {
    return cloneBlock(this, new Bottleneck(this.inPlanes, this.planes, this.stride), allConvBns);
  }
}

type ResBlock = BasicBlock | Bottleneck;

/** relu(main + shortcut), releasing the block's intermediates (not its input x) as chain() does. */
function residual(main: Tensor, shortcut: Tensor, x: Tensor): Tensor {
  const sum = main.add(shortcut);
  release(main, x);
  release(shortcut, x);
  const y = F.relu(sum);
  sum.dispose();
  return y;
}

/** relu(main + shortcut) in the graph. */
function residualOnnx(e: OnnxEmitter, b: ResBlock, main: string, x: string, n: string): string {
  // The shortcut comes after the main path, as in forward(): a method's per-graph state (AdaFilter's
  // gate recurrence) advances in call order.
  const s = b.downsample ? e.emit(b.downsample, x) : x;
  return e.relu(e.g.one('Add', [main, s], `${n}/add`), `${n}.out`);
}

/** A block's own conv/bn pairs in order (shortcut excluded), with state-dict names under `prefix` ('layer1.0.'). */
function blockConvBns(b: ResBlock, prefix: string): ConvBn[] {
  const n = b instanceof Bottleneck ? 3 : 2;
  const convs: ConvBn[] = [];
  for (let i = 1; i <= n; i++) convs.push(convBn(b, `conv${i}`, `bn${i}`, `${prefix}conv${i}`, `${prefix}bn${i}`, 'block', 'conv'));
  return convs;
}

function shortcutConvBn(b: ResBlock, prefix: string): ConvBn | null {
  const ds = b.downsample;
  return ds ? convBn(ds, '0', '1', `${prefix}downsample.0`, `${prefix}downsample.1`, 'shortcut', 'conv') : null;
}

function allConvBns(b: ResBlock): ConvBn[] {
  const s = shortcutConvBn(b, '');
  return s ? [...blockConvBns(b, ''), s] : blockConvBns(b, '');
}

export interface ResNetConfig {
  /** Blocks per stage. */
  blocks: number[];
  /** Channels per stage (the "planes"; a Bottleneck stage outputs 4× as many). */
  widths: number[];
  /** 'cifar': 3×3 stride-1 stem, no max-pool; 'imagenet': 7×7 stride-2 stem + 3×3 stride-2 max-pool. */
  stem: 'cifar' | 'imagenet';
  numClasses: number;
  /** 'basic' (default) or 'bottleneck'. */
  block?: 'basic' | 'bottleneck';
  inChannels?: number;
  /** Output channels of the stem (default widths[0]). */
  stemWidth?: number;
  /** Stride of each stage's first block (default 1 for the first stage, 2 for the others). */
  strides?: number[];
}

export class ResNet extends Module implements Backbone {
  readonly family = 'resnet';
  conv1: Conv2d;
  bn1: BatchNorm2d;
  layers: Sequential[];
  fc: Linear;
  readonly featureDim: number;

  constructor(readonly config: ResNetConfig) {
    super();
    const { blocks, widths, stem } = config;
    const inCh = config.inChannels ?? 3;
    const stemWidth = config.stemWidth ?? widths[0];
    const Block = config.block === 'bottleneck' ? Bottleneck : BasicBlock;
    this.conv1 = stem === 'cifar'
      ? new Conv2d(inCh, stemWidth, 3, { padding: 1, bias: false })
      : new Conv2d(inCh, stemWidth, 7, { stride: 2, padding: 3, bias: false });
    this.bn1 = new BatchNorm2d(stemWidth);
    let inPlanes = stemWidth;
    this.layers = blocks.map((n, stage) => {
      const planes = widths[stage];
      const stride = config.strides?.[stage] ?? (stage > 0 ? 2 : 1);
      return new Sequential(...Array.from({ length: n }, (_, i) => {
        const b = new Block(inPlanes, planes, i === 0 ? stride : 1);
        inPlanes = b.outPlanes;
        return b;
      }));
    });
    this.featureDim = inPlanes;
    this.fc = new Linear(inPlanes, config.numClasses);
    for (const m of this.modules()) {
      if (m instanceof Conv2d) kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu' });
      else if (m instanceof BatchNorm2d) { constant_(m.weight!, 1); constant_(m.bias!, 0); }
    }
  }

  /** torchvision's names: layer1, layer2, … rather than layers.0, layers.1. */
  override namedChildren(): [string, Module][] {
    return [['conv1', this.conv1], ['bn1', this.bn1],
      ...this.layers.map((l, i): [string, Module] => [`layer${i + 1}`, l]), ['fc', this.fc]];
  }

  /** Pooled features [N, featureDim] before the classifier. */
  features(x: Tensor): Tensor {
    let h = this.config.stem === 'imagenet'
      ? chain(x, this.conv1, this.bn1, F.relu, (t) => F.maxPool2d(t, 3, { stride: 2, padding: 1 }))
      : chain(x, this.conv1, this.bn1, F.relu);
    for (const l of this.layers) h = l.forward(h);
    return F.globalAvgPool(h);
  }

  forward(x: Tensor): Tensor {
    return this.fc.forward(this.features(x));
  }

  toOnnx(e: OnnxEmitter, x: string, n: string): string {
    let h = e.relu(e.emit(this.bn1, e.emit(this.conv1, x)), `${n || 'stem'}.relu`);
    if (this.config.stem === 'imagenet') h = e.maxPool(3, 2, 1, h, `${n}maxpool`);
    for (const l of this.layers) h = e.emit(l, h);
    return e.emit(this.fc, e.gap(h, `${n}pool`));
  }

  /**
   * Moves each strided Bottleneck's stride from its 3×3 conv to its 1×1 conv, as Keras's ResNet
   * (and the original paper's) has it; torchvision's "ResNet v1.5" and our Bottleneck stride the 3×3.
   * The two convs are replaced by fresh ones under the same names, for weights loaded afterwards.
   */
  strideOnFirstConv(): void {
    for (const b of this.blocks()) {
      if (b.stride === 1) continue;
      if (!(b.module instanceof Bottleneck)) throw new Error(`ResNet: ${b.name} is not a Bottleneck; only a Bottleneck has a 1×1 conv to stride`);
      const [c1, c2] = b.convs;
      c1.replace(new Conv2d(c1.conv.inChannels, c1.conv.outChannels, 1, { stride: b.stride, bias: false }), c1.bn);
      c2.replace(new Conv2d(c2.conv.inChannels, c2.conv.outChannels, 3, { padding: 1, bias: false }), c2.bn);
      c1.conv.dispose();
      c2.conv.dispose();
    }
  }

  blocks(): BlockInfo[] {
    const out: BlockInfo[] = [];
    this.layers.forEach((layer, stage) => {
      layer.namedChildren().forEach(([key, b]) => {
        if (!(b instanceof BasicBlock || b instanceof Bottleneck)) return;
        const name = `layer${stage + 1}.${key}`;
        out.push({
          name, module: b, stage, inChannels: b.inPlanes, outChannels: b.outPlanes, stride: b.stride, residual: true,
          convs: blockConvBns(b, `${name}.`), shortcut: shortcutConvBn(b, `${name}.`),
          parent: layer, key,
          replace: (m: Module) => { (layer as unknown as Record<string, Module>)[key] = m; },
        });
      });
    });
    return out;
  }

  convBns(): ConvBn[] {
    const out = [convBn(this, 'conv1', 'bn1', 'conv1', 'bn1', 'stem', 'conv')];
    for (const b of this.blocks()) out.push(...(b.shortcut ? [...b.convs, b.shortcut] : b.convs));
    return out;
  }

  classifier(): { name: string; module: Linear } {
    return { name: 'fc', module: this.fc };
  }

  resetClassifier(numClasses: number): void {
    const old = this.fc;
    this.fc = new Linear(this.featureDim, numClasses);
    this.fc.training = this.training;
    old.dispose();
  }
}

/** Block type of a block in a ResNet, for callers that switch on it. */
export function isResBlock(m: Module): m is ResBlock {
  return m instanceof BasicBlock || m instanceof Bottleneck;
}

/** A ResNet's architecture options (arch-options.ts): its config, and where a strided Bottleneck has its stride. */
export interface ResNetArchOptions {
  family: 'resnet';
  config: Omit<ResNetConfig, 'numClasses'>;
  strideOn: '3x3' | '1x1';
}

export const RESNET_ARCH: ArchFamily<ResNetArchOptions> = {
  family: 'resnet',
  describe(model, arch) {
    if (!(model instanceof ResNet)) return null;
    const { numClasses: _n, ...config } = model.config;
    const strideOn1x1 = model.blocks().some((b) => b.stride !== 1 && b.convs.length === 3 && b.convs[0].conv.stride !== 1);
    return { options: { family: 'resnet', config, strideOn: strideOn1x1 ? '1x1' : '3x3' }, name: arch, fallback: arch, asBuilt: !strideOn1x1 };
  },
  check(o, bad) {
    const c = o.config as Record<string, unknown> | null;
    if (typeof c !== 'object' || c === null) return bad('resnet needs a config');
    if (!isIntList(c.blocks, 64) || !isIntList(c.widths, 4096) || (c.blocks as number[]).length !== (c.widths as number[]).length) bad('config.blocks and config.widths must be equally long lists of positive integers');
    if (c.stem !== 'cifar' && c.stem !== 'imagenet') bad("config.stem must be 'cifar' or 'imagenet'");
    if (c.block !== undefined && c.block !== 'basic' && c.block !== 'bottleneck') bad("config.block must be 'basic' or 'bottleneck'");
    if (c.inChannels !== undefined && c.inChannels !== 1 && c.inChannels !== 3) bad('config.inChannels must be 1 or 3');
    if (c.stemWidth !== undefined && !(Number.isInteger(c.stemWidth) && (c.stemWidth as number) >= 1 && (c.stemWidth as number) <= 4096)) bad('config.stemWidth must be a positive integer');
    if (c.strides !== undefined && !(isIntList(c.strides, 4) && (c.strides as number[]).length === (c.blocks as number[]).length)) bad('config.strides must list one stride (1..4) per stage');
    if (o.strideOn !== '3x3' && o.strideOn !== '1x1') bad("strideOn must be '3x3' or '1x1'");
    if (o.strideOn === '1x1' && c.block !== 'bottleneck') bad("strideOn '1x1' needs Bottleneck blocks");
  },
  build(o, numClasses) {
    const r = new ResNet({ ...o.config, numClasses });
    if (o.strideOn === '1x1') r.strideOnFirstConv();
    return r;
  },
};
