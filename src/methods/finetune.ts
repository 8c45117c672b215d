import { Module } from '../nn/module';
import { Parameter } from '../nn/parameter';
import { Method, MethodModel, ParamRole, backboneAndHead, resolveOptions } from './method';

/** Standard fine-tuning: every backbone layer and the new head train. */
export class FinetuneModel extends MethodModel {
  constructor(backbone: Module, numClasses: number, method = 'finetune') {
    super(method, backbone, numClasses);
    this.applyTrainability();
  }

  trainableParameters(): [Parameter, ParamRole][] {
    return backboneAndHead(this);
  }
}

export const finetune: Method<Record<string, never>> = {
  name: 'finetune',
  evaluatesAsBackbone: true,
  description: 'standard fine-tuning: all layers + new head',
  defaults: {},
  apply(backbone, numClasses, options) {
    resolveOptions('finetune', {}, options);
    return new FinetuneModel(backbone, numClasses);
  },
};
