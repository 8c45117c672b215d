/**
 * What a method needs to know about a backbone's structure: where its classifier is, and which
 * convolution + batch-norm pairs sit where (stem, inside residual blocks, shortcuts, head), in forward
 * order. Read from the backbone's own metadata (`convBns()`, `blocks()`, `classifier()`,
 * `resetClassifier()` of src/models/backbone.ts), so every registered family (ResNet with BasicBlock
 * or Bottleneck, MobileNetV2) is handled the same way.
 */
import { Module } from '../nn/module';
import { Conv2d } from '../nn/conv';
import { BatchNorm2d } from '../nn/batchnorm';
import { Linear } from '../nn/linear';
import type { Backbone, ConvBn, ConvRole } from '../models/backbone';
import { InputError } from '../errors';

/** A convolution directly followed by its batch norm: the unit AdaFilter gates. */
export interface ConvBnSite {
  /** Dotted name of the convolution in the backbone (layer1.0.conv1, features.2.conv.1.0). */
  name: string;
  kind: ConvRole;
  /** 'conv' (ResNet), 'expand' / 'depthwise' / 'project' (MobileNetV2). */
  layerKind: ConvBn['kind'];
  parent: Module;
  convKey: string;
  bnKey: string;
  conv: Conv2d;
  bn: BatchNorm2d;
  /** Swaps conv and BN in the model. */
  replace(conv: Module, bn: Module): void;
}

/** A residual block (the unit SpotTune chooses per example). */
export interface BlockSite {
  name: string;
  parent: Module;
  key: string;
  block: Module;
  /** True when the block adds its input back. */
  residual: boolean;
  /** Swaps the block in the model. */
  replace(m: Module): void;
}

export interface BackboneInfo {
  model: Backbone;
  family: string;
  /** State-dict name of the classifier (a Linear): 'fc', 'classifier.1'. */
  headKey: string;
  featureDim: number;
  /** Every conv+BN pair in forward order. */
  convSites: ConvBnSite[];
  blocks: BlockSite[];
  /** The classifier (a Linear) now in the model. */
  classifier(): Linear;
  /** Replaces the classifier by a new Linear(featureDim, n) under the same name; the old one is disposed. */
  resetClassifier(n: number): void;
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

/** Replaces attribute `key` of `parent` (a Sequential child too, by its index name). */
export function replaceChild(parent: Module, key: string, child: Module): void {
  (parent as unknown as Record<string, Module>)[key] = child;
}

function isBackbone(m: Module): m is Backbone {
  const o = m as unknown as Record<string, unknown>;
  return typeof o.convBns === 'function' && typeof o.blocks === 'function'
    && typeof o.classifier === 'function' && typeof o.resetClassifier === 'function'
    && typeof o.features === 'function';
}

/**
 * The structure of a backbone, from its own metadata; an InputError for a module that does not
 * describe itself (see src/models/backbone.ts). Call it before modifying the model: the sites point at
 * the modules as built.
 */
export function describeBackbone(model: Module): BackboneInfo {
  if (!isBackbone(model)) {
    const name = model.constructor?.name ?? 'unknown';
    throw new InputError(`fine-tuning methods do not support the architecture ${name} (a backbone must offer convBns(), blocks(), classifier(), resetClassifier())`);
  }
  const convSites: ConvBnSite[] = model.convBns().map((c) => ({
    name: c.convName, kind: c.role, layerKind: c.kind, parent: c.parent, convKey: c.convKey, bnKey: c.bnKey,
    conv: c.conv, bn: c.bn, replace: (conv: Module, bn: Module) => c.replace(conv, bn),
  }));
  const blocks: BlockSite[] = model.blocks().map((b) => ({
    name: b.name, parent: b.parent, key: b.key, block: b.module, residual: b.residual, replace: (m: Module) => b.replace(m),
  }));
  if (blocks.length === 0) throw new InputError(`backbone ${model.family}: no blocks a method knows`);
  return {
    model, family: model.family, headKey: model.classifier().name, featureDim: model.featureDim, convSites, blocks,
    classifier: () => model.classifier().module,
    resetClassifier: (n: number) => model.resetClassifier(n),
  };
}
