import { Module } from '../nn/module';
import { Parameter } from '../nn/parameter';
import { Method, MethodModel, ParamRole, resolveOptions } from './method';

/** Feature extraction: the backbone is frozen with its BN layers always in eval mode; only the new head trains. */
export class LinearProbeModel extends MethodModel {
  constructor(backbone: Module, numClasses: number) {
    super('linear-probe', backbone, numClasses);
    this.applyTrainability();
    this.train(this.training);
  }

  trainableParameters(): [Parameter, ParamRole][] {
    return this.head.parameters().map((p): [Parameter, ParamRole] => [p, 'head']);
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

export const linearProbe: Method<Record<string, never>> = {
  name: 'linear-probe',
  description: 'new head only; backbone frozen, BN in eval',
  defaults: {},
  apply(backbone, numClasses, options) {
    resolveOptions('linear-probe', {}, options);
    return new LinearProbeModel(backbone, numClasses);
  },
};
