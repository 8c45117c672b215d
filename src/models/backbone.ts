import { Tensor } from '../engine/tensor';
import { noGrad } from '../engine/autograd';
import { Module } from '../nn/module';
import { Conv2d } from '../nn/conv';
import { BatchNorm2d } from '../nn/batchnorm';
import { Linear } from '../nn/linear';
import { PaddedConv2d } from './padded-conv';

/**
 * Where a convolution sits in a backbone:
 * - 'stem': the first convolution(s) before any block;
 * - 'block': a convolution inside a residual / inverted-residual block (the ones AdaFilter gates);
 * - 'shortcut': a projection shortcut (ResNet's downsample.0);
 * - 'head': a convolution after the last block (MobileNetV2's 1×1 to 1280 channels).
 */
export type ConvRole = 'stem' | 'block' | 'shortcut' | 'head';

/**
 * A convolution and the batch norm that follows it, by state-dict name and as live modules.
 * `replace` swaps both in the model (e.g. for a gated convolution that does its own normalisation:
 * pass an Identity as `bn`). The description is of the model as built; after a replace the `conv`
 * and `bn` fields of this object still point at the originals.
 */
export interface ConvBn {
  convName: string;
  bnName: string;
  conv: Conv2d;
  bn: BatchNorm2d;
  role: ConvRole;
  /** 'conv' (ResNet), 'expand' / 'depthwise' / 'project' (MobileNetV2). */
  kind: 'conv' | 'expand' | 'depthwise' | 'project';
  /** The module holding both as attributes (a Sequential holds them as '0', '1', …). */
  parent: Module;
  convKey: string;
  bnKey: string;
  replace(conv: Module, bn: Module): void;
}

/** One residual block (ResNet BasicBlock / Bottleneck, MobileNetV2 InvertedResidual). */
export interface BlockInfo {
  /** State-dict prefix: 'layer1.0', 'features.3'. */
  name: string;
  module: Module;
  /** 0-based stage (ResNet layerN − 1; MobileNetV2 row of the inverted-residual table). */
  stage: number;
  inChannels: number;
  outChannels: number;
  stride: number;
  /** True when the block adds its input back (identity or projection shortcut). */
  residual: boolean;
  /** The block's own convolutions in execution order, shortcut excluded. */
  convs: ConvBn[];
  /** The projection shortcut, or null for identity / no shortcut. */
  shortcut: ConvBn | null;
  /** The module holding the block (a stage Sequential) and its attribute there. */
  parent: Module;
  key: string;
  /** Swaps the whole block in the model (SpotTune-style per-block choices). */
  replace(m: Module): void;
}

/** What every backbone built by the registry offers besides Module. */
export interface Backbone extends Module {
  readonly family: string;
  /** Width of `features(x)`. */
  readonly featureDim: number;
  /** Pooled features [N, featureDim] before the classifier. */
  features(x: Tensor): Tensor;
  forward(x: Tensor): Tensor;
  /** Every conv/bn pair in execution order, with its role. */
  convBns(): ConvBn[];
  /** The residual blocks in execution order. */
  blocks(): BlockInfo[];
  /** The classifier and its state-dict prefix ('fc', 'classifier.1'). */
  classifier(): { name: string; module: Linear };
  /** Replaces the classifier by a freshly initialised one with `numClasses` outputs (the old one is disposed). */
  resetClassifier(numClasses: number): void;
}

/** A ConvBn whose replace() sets the attributes on the owning module. */
export function convBn(parent: Module, convKey: string, bnKey: string,
  convName: string, bnName: string, role: ConvRole, kind: ConvBn['kind']): ConvBn {
  const o = parent as unknown as Record<string, Module>;
  const conv = o[convKey], bn = o[bnKey];
  if (!(conv instanceof Conv2d) || !(bn instanceof BatchNorm2d)) throw new Error(`internal: ${convName} / ${bnName} is not a conv/bn pair`);
  return {
    convName, bnName, conv, bn, role, kind, parent, convKey, bnKey,
    replace(c: Module, n: Module) { o[convKey] = c; o[bnKey] = n; },
  };
}

/** A block that copies itself (SpotTune keeps a frozen copy of each). */
export interface CloneableBlock extends Module {
  clone(): Module;
}

export function isCloneableBlock(m: Module): m is CloneableBlock {
  return typeof (m as unknown as Partial<CloneableBlock>).clone === 'function';
}

/** A conv or BN layer of the same class and settings (its weights are loaded afterwards). */
function sameLayer(m: Conv2d | BatchNorm2d): Module {
  if (m instanceof BatchNorm2d) {
    const Bn = m.constructor as typeof BatchNorm2d;
    return new Bn(m.numFeatures, { eps: m.eps, momentum: m.momentum, affine: m.weight !== null });
  }
  const c = { stride: m.stride, dilation: m.dilation, groups: m.groups, bias: m.bias !== null };
  if (m instanceof PaddedConv2d) return new PaddedConv2d(m.inChannels, m.outChannels, m.kernelSize, m.pads, c);
  // Another Conv2d subclass (a gated conv) has state of its own that this copy would drop.
  if (Object.getPrototypeOf(m) !== Conv2d.prototype) throw new Error(`internal: cannot copy a ${m.constructor.name}`);
  return new Conv2d(m.inChannels, m.outChannels, m.kernelSize, { ...c, padding: m.padding });
}

/**
 * `source` copied into `fresh` (its constructor's output for the same shape), weights included.
 * Each conv/BN pair is rebuilt from the source's live layers rather than taken from the
 * constructor, because importers change layers after construction (Keras pads and BN eps, a Keras
 * ResNet's stride on the 1×1 conv, a per-layer eps) and a copy must compute what the source computes.
 */
export function cloneBlock<M extends Module>(source: M, fresh: M, pairs: (b: M) => ConvBn[]): M {
  const from = pairs(source), to = pairs(fresh);
  if (from.length !== to.length) throw new Error(`internal: ${source.constructor.name} copy has ${to.length} conv/bn pairs, the source ${from.length}`);
  from.forEach((s, i) => {
    to[i].replace(sameLayer(s.conv), sameLayer(s.bn));
    to[i].conv.dispose();
    to[i].bn.dispose();
  });
  noGrad(() => fresh.loadStateDict(source.stateDict()));
  fresh.train(source.training);
  return fresh;
}
