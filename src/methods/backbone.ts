/**
 * What a method needs to know about a backbone's structure: where its classifier is, and which
 * convolution + batch-norm pairs sit where (stem, inside residual blocks, shortcuts), in forward
 * order. One function per architecture family; MobileNetV2 is added here as another branch.
 */
import { Tensor } from '../engine/tensor';
import { Module } from '../nn/module';
import { Conv2d } from '../nn/conv';
import { BatchNorm2d } from '../nn/batchnorm';
import { Sequential } from '../nn/sequential';
import { ResNet } from '../models/resnet';
import { InputError } from '../errors';

/** A backbone as methods use it: a Module with pooled features before its classifier. */
export type Backbone = Module & { features(x: Tensor): Tensor };

/** A convolution directly followed by its batch norm: the unit AdaFilter gates. */
export interface ConvBnSite {
  /** Dotted name of the convolution in the backbone (layer1.0.conv1). */
  name: string;
  kind: 'stem' | 'block' | 'shortcut';
  parent: Module;
  convKey: string;
  bnKey: string;
  conv: Conv2d;
  bn: BatchNorm2d;
}

/** A residual block (the unit SpotTune chooses per example). */
export interface BlockSite {
  name: string;
  parent: Module;
  key: string;
  block: Module;
}

export interface BackboneInfo {
  model: Backbone;
  family: string;
  /** Attribute holding the classifier (a Linear). */
  headKey: string;
  featureDim: number;
  /** Every conv+BN pair in forward order. */
  convSites: ConvBnSite[];
  blocks: BlockSite[];
}

/** Which conv+BN pairs AdaFilter gates: 'blocks' (default), 'all', or 'last-N' (the last N block convs). */
export type GateLayers = 'blocks' | 'all' | `last-${number}`;

export function selectSites(info: BackboneInfo, which: GateLayers): ConvBnSite[] {
  const inBlocks = info.convSites.filter((s) => s.kind === 'block');
  if (which === 'blocks') return inBlocks;
  if (which === 'all') return info.convSites;
  const m = /^last-(\d+)$/.exec(which);
  if (!m || Number(m[1]) < 1) throw new InputError(`gate layers '${which}': expected blocks, all or last-N (N ≥ 1)`);
  return inBlocks.slice(-Math.min(Number(m[1]), inBlocks.length));
}

const get = (m: Module, k: string): unknown => (m as unknown as Record<string, unknown>)[k];

/** Replaces attribute `key` of `parent` (a Sequential child too, by its index name). */
export function replaceChild(parent: Module, key: string, child: Module): void {
  (parent as unknown as Record<string, Module>)[key] = child;
}

/** conv1/bn1, conv2/bn2, … of a residual block (BasicBlock: 2 pairs, Bottleneck: 3). */
function blockPairs(block: Module): [string, string][] {
  const out: [string, string][] = [];
  for (let k = 1; get(block, `conv${k}`) instanceof Conv2d && get(block, `bn${k}`) instanceof BatchNorm2d; k++) {
    out.push([`conv${k}`, `bn${k}`]);
  }
  return out;
}

function describeResNet(model: ResNet): BackboneInfo {
  const names = new Map(model.namedModules().map(([n, m]) => [m, n] as [Module, string]));
  const site = (parent: Module, convKey: string, bnKey: string, kind: ConvBnSite['kind']): ConvBnSite => {
    const prefix = names.get(parent) ?? '';
    return {
      name: prefix ? `${prefix}.${convKey}` : convKey, kind, parent, convKey, bnKey,
      conv: get(parent, convKey) as Conv2d, bn: get(parent, bnKey) as BatchNorm2d,
    };
  };
  const convSites: ConvBnSite[] = [site(model, 'conv1', 'bn1', 'stem')];
  const blocks: BlockSite[] = [];
  for (const stage of model.layers) {
    for (const [key, block] of stage.namedChildren()) {
      const pairs = blockPairs(block);
      if (pairs.length === 0) throw new InputError(`backbone block ${names.get(block)} has no conv/bn pairs a method knows`);
      blocks.push({ name: names.get(block) ?? key, parent: stage, key, block });
      for (const [c, b] of pairs) convSites.push(site(block, c, b, 'block'));
      const ds = get(block, 'downsample');
      if (ds instanceof Sequential && get(ds, '0') instanceof Conv2d && get(ds, '1') instanceof BatchNorm2d) {
        convSites.push(site(ds, '0', '1', 'shortcut'));
      }
    }
  }
  return { model, family: 'resnet', headKey: 'fc', featureDim: model.fc.inFeatures, convSites, blocks };
}

/** The structure of a supported backbone; an InputError for architectures no method knows yet. */
export function describeBackbone(model: Module): BackboneInfo {
  if (model instanceof ResNet) return describeResNet(model);
  const name = model.constructor?.name ?? 'unknown';
  throw new InputError(`fine-tuning methods do not support the architecture ${name} yet (supported: ResNet)`);
}
