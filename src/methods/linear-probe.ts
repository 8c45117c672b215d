import { Tensor } from '../engine/tensor';
import { Module } from '../nn/module';
import { Parameter } from '../nn/parameter';
import { Linear } from '../nn/linear';
import { Identity } from '../nn/basic';
import type { Backbone as ModelBackbone } from '../models/backbone';
import { InputError } from '../errors';
import { Method, MethodModel, ParamRole, resolveOptions } from './method';
import { replaceChild } from './backbone';

export interface LinearProbeOptions {
  /**
   * Cut the backbone after this block (`layer3.0`, `features.13`; see cutPoints) and probe the
   * global average of its output; null: the backbone's own features.
   */
  featuresFrom: string | null;
}

/** Where a backbone can be cut for a probe: after each block, with that block's output width. */
export interface CutPoint {
  name: string;
  stage: number;
  channels: number;
}

export function cutPoints(backbone: Module): CutPoint[] {
  const b = backbone as unknown as Partial<ModelBackbone>;
  if (typeof b.blocks !== 'function') return [];
  return b.blocks().map((x) => ({ name: x.name, stage: x.stage, channels: x.outChannels }));
}

/** The index of block `name` in `backbone`, or an InputError listing the cut points. */
function cutIndex(backbone: ModelBackbone, name: string): number {
  const blocks = backbone.blocks();
  const i = blocks.findIndex((b) => b.name === name);
  if (i < 0) {
    throw new InputError(`linear-probe: --features-from '${name}' is not a block of this ${backbone.family} backbone; cut points: ${blocks.map((b) => b.name).join(', ')}`);
  }
  return i;
}

/**
 * Truncates `backbone` after block `name`: the blocks after it and the layers after the last block
 * (MobileNetV2's 1×1 to 1280, with its BN and ReLU6) become identities, so the backbone's own
 * features() is the global average of that block's output. Returns its channels. The backbone can
 * no longer describe itself afterwards (convBns() expects the layers it lost).
 */
function cutAfter(backbone: ModelBackbone, name: string): number {
  const i = cutIndex(backbone, name);
  const blocks = backbone.blocks();
  const tail = backbone.convBns().filter((c) => c.role === 'head');
  for (const b of blocks.slice(i + 1)) {
    b.replace(new Identity());
    b.module.dispose();
  }
  for (const c of tail) {
    for (const [key, m] of c.parent.namedChildren()) {
      replaceChild(c.parent, key, new Identity());
      m.dispose();
    }
  }
  return blocks[i].outChannels;
}

/** A Linear's weights for another input width, in place: the model keeps its head object and names. */
function resizeInputs(head: Linear, inFeatures: number): void {
  const fresh = new Linear(inFeatures, head.outFeatures, head.bias !== null);
  head.weight.dispose();
  head.bias?.dispose();
  head.weight = fresh.weight;
  head.bias = fresh.bias;
  (head as { inFeatures: number }).inFeatures = inFeatures;
}

/** Feature extraction: the backbone is frozen with its BN layers always in eval mode; only the new head trains. */
export class LinearProbeModel extends MethodModel {
  #given: Tensor | null = null;

  constructor(backbone: Module, numClasses: number, readonly options: LinearProbeOptions = { featuresFrom: null }) {
    if (options.featuresFrom !== null) cutIndex(asBackbone(backbone), options.featuresFrom); // bad names fail before anything changes
    // The method reads the backbone's description as built; the cut comes after, and the head follows it.
    super('linear-probe', backbone, numClasses);
    if (options.featuresFrom !== null) {
      const channels = cutAfter(asBackbone(this.backbone), options.featuresFrom);
      if (channels !== this.head.inFeatures) resizeInputs(this.head, channels);
    }
    this.applyTrainability();
    this.train(this.training);
  }

  trainableParameters(): [Parameter, ParamRole][] {
    return this.head.parameters().map((p): [Parameter, ParamRole] => [p, 'head']);
  }

  override features(x: Tensor): Tensor {
    return this.#given ?? super.features(x);
  }

  /**
   * Logits from features computed earlier (the feature cache): forward()'s own head path on them,
   * dropout before the classifier included, so a cached step is the uncached one.
   */
  forwardFeatures(features: Tensor): Tensor {
    this.#given = features;
    try {
      return this.forward(features);
    } finally {
      this.#given = null;
    }
  }

  /** The backbone stays in eval mode (BN uses and keeps its pretrained running statistics). */
  override train(mode = true): this {
    super.train(mode);
    this.backbone.train(false);
    this.head.train(mode);
    this.training = mode;
    return this;
  }
}

function asBackbone(m: Module): ModelBackbone {
  const b = m as unknown as Partial<ModelBackbone>;
  if (typeof b.blocks !== 'function' || typeof b.convBns !== 'function') {
    throw new InputError(`linear-probe: --features-from needs a backbone that lists its blocks (${m.constructor.name} does not)`);
  }
  return m as unknown as ModelBackbone;
}

export const linearProbe: Method<LinearProbeOptions> = {
  name: 'linear-probe',
  evaluatesAsBackbone: true,
  description: 'new head only; backbone frozen, BN in eval (featuresFrom: cut after a block)',
  defaults: { featuresFrom: null },
  apply(backbone, numClasses, options) {
    const o = resolveOptions('linear-probe', { featuresFrom: null } as LinearProbeOptions, options);
    if (o.featuresFrom !== null && typeof o.featuresFrom !== 'string') {
      throw new InputError(`linear-probe: featuresFrom must be a block name, got ${JSON.stringify(o.featuresFrom)}`);
    }
    return new LinearProbeModel(backbone, numClasses, o);
  },
};
