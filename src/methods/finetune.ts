import { Module } from '../nn/module';
import { Parameter } from '../nn/parameter';
import { InputError } from '../errors';
import { Method, MethodModel, ParamRole, backboneAndHead, resolveOptions } from './method';
import { splitAt, underAny } from './layer-split';

export interface FinetuneOptions {
  /**
   * Freeze the stem and every block up to and including this one (`stem`, `layer2.1`, …; see
   * layer-split.ts): their weights stay the pretrained ones and their BN layers stay in eval mode,
   * so the frozen part computes the same function throughout. null: everything trains.
   */
  freezeThrough: string | null;
}

/** Standard fine-tuning: every backbone layer and the new head train (or those above `freezeThrough`). */
export class FinetuneModel extends MethodModel {
  /** The frozen modules (kept in eval mode by train()). */
  readonly #frozen: Module[];
  readonly #frozenParams: Set<Parameter>;

  constructor(backbone: Module, numClasses: number, method = 'finetune', readonly options: FinetuneOptions = { freezeThrough: null }) {
    // A bad layer name fails before the backbone is touched.
    const split = options.freezeThrough === null ? null : splitAt(backbone, options.freezeThrough, '--freeze-through');
    super(method, backbone, numClasses);
    const below = split?.below ?? [];
    this.#frozen = this.backbone.namedModules().filter(([n]) => n !== '' && below.includes(n)).map(([, m]) => m);
    this.#frozenParams = new Set(this.backbone.namedParameters().filter(([n]) => underAny(n, below)).map(([, p]) => p));
    this.applyTrainability();
    this.train(this.training);
  }

  trainableParameters(): [Parameter, ParamRole][] {
    return backboneAndHead(this).filter(([p]) => !this.#frozenParams.has(p));
  }

  override train(mode = true): this {
    super.train(mode);
    for (const m of this.#frozen) m.train(false);
    return this;
  }
}

export const finetune: Method<FinetuneOptions> = {
  name: 'finetune',
  evaluatesAsBackbone: true,
  description: 'standard fine-tuning: all layers + new head (freezeThrough: freeze the stem and the blocks up to a block)',
  defaults: { freezeThrough: null },
  apply(backbone, numClasses, options) {
    const o = resolveOptions('finetune', { freezeThrough: null } as FinetuneOptions, options);
    if (o.freezeThrough !== null && (typeof o.freezeThrough !== 'string' || !o.freezeThrough.trim())) {
      throw new InputError(`finetune: freezeThrough must be a layer name (stem or a block), got ${JSON.stringify(o.freezeThrough)}`);
    }
    return new FinetuneModel(backbone, numClasses, 'finetune', o);
  },
};
