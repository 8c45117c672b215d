export { ResNet, BasicBlock, Bottleneck } from './resnet';
export type { ResNetConfig } from './resnet';
export { MobileNetV2, InvertedResidual, makeDivisible, MOBILENETV2_SETTING } from './mobilenetv2';
export type { MobileNetV2Config } from './mobilenetv2';
export type { Backbone, BlockInfo, ConvBn, ConvRole } from './backbone';
export { buildModel, modelNames, modelSpec } from './registry';
export type { ModelSpec } from './registry';
