import { ResNet, ResNetConfig } from './resnet';
import { MobileNetV2 } from './mobilenetv2';
import { EfficientNet } from './efficientnet';
import { Backbone } from './backbone';
import { InputError } from '../errors';

export interface ModelSpec {
  name: string;
  family: 'resnet' | 'mobilenetv2' | 'efficientnet';
  /** The input size the architecture was designed for (others work: every model pools globally). */
  inputSize: number;
  description: string;
  /** Where compatible pretrained weights come from (names as in that source). */
  weightsFrom?: string;
  build(numClasses: number): Backbone;
}

type Entry = Omit<ModelSpec, 'name'>;

const resnet = (inputSize: number, description: string, cfg: Omit<ResNetConfig, 'numClasses'>, weightsFrom?: string): Entry => ({
  family: 'resnet', inputSize, description, weightsFrom,
  build: (numClasses) => new ResNet({ ...cfg, numClasses }),
});

const cifar = (n: number, desc: string, widths = [16, 32, 64]): Entry =>
  resnet(32, desc, { blocks: [n, n, n], widths, stem: 'cifar' });

const mobilenet = (widthMult: number): Entry => ({
  family: 'mobilenetv2', inputSize: 224, weightsFrom: 'torchvision mobilenet_v2 / timm mobilenetv2_*',
  description: `MobileNetV2 (Sandler et al. 2018), width ×${widthMult}: inverted residuals with ReLU6, torchvision's names`,
  build: (numClasses) => new MobileNetV2({ numClasses, widthMult }),
});

const models: Record<string, Entry> = {
  resnet20: cifar(3, 'CIFAR ResNet-20 (He et al. 2016): 3 stages × 3 BasicBlocks, widths 16/32/64'),
  resnet32: cifar(5, 'CIFAR ResNet-32: 3 stages × 5 BasicBlocks, widths 16/32/64'),
  resnet56: cifar(9, 'CIFAR ResNet-56: 3 stages × 9 BasicBlocks, widths 16/32/64'),
  // Issue 15's "wider resnet20" (WRN-20-2 in Zagoruyko & Komodakis's naming): 4× the FLOPs of resnet20.
  'resnet20-w2': cifar(3, 'resnet20 at twice the width: 3 stages × 3 BasicBlocks, widths 32/64/128', [32, 64, 128]),
  'resnet18-cifar': resnet(32,
    'ResNet-18 for 32×32 inputs: 3×3 stride-1 stem, no max-pool, BasicBlocks [2,2,2,2], widths 64/128/256/512',
    { blocks: [2, 2, 2, 2], widths: [64, 128, 256, 512], stem: 'cifar' }),
  resnet26: resnet(64,
    'ResNet-26 as in the Visual Decathlon (Rebuffi et al. 2017) / SpotTune: 3×3 stem to 32 channels, 3 stages × 4 BasicBlocks, widths 64/128/256, each stage stride 2; projection shortcuts',
    { blocks: [4, 4, 4], widths: [64, 128, 256], stem: 'cifar', stemWidth: 32, strides: [2, 2, 2] }),
  resnet18: resnet(224, 'ResNet-18 (ImageNet): 7×7/2 stem + max-pool, BasicBlocks [2,2,2,2], torchvision names',
    { blocks: [2, 2, 2, 2], widths: [64, 128, 256, 512], stem: 'imagenet' }, 'torchvision / timm resnet18'),
  resnet34: resnet(224, 'ResNet-34 (ImageNet): BasicBlocks [3,4,6,3], torchvision names',
    { blocks: [3, 4, 6, 3], widths: [64, 128, 256, 512], stem: 'imagenet' }, 'torchvision / timm resnet34'),
  resnet50: resnet(224, 'ResNet-50 (ImageNet): Bottlenecks [3,4,6,3] (stride on the 3×3, as torchvision), torchvision names',
    { blocks: [3, 4, 6, 3], widths: [64, 128, 256, 512], stem: 'imagenet', block: 'bottleneck' }, 'torchvision / timm resnet50'),
  mobilenetv2: mobilenet(1),
  'mobilenetv2-0.75': mobilenet(0.75),
  'mobilenetv2-0.5': mobilenet(0.5),
  'mobilenetv2-0.35': mobilenet(0.35),
  'efficientnet-b0': { family: 'efficientnet', inputSize: 224, weightsFrom: 'torchvision efficientnet_b0 / timm efficientnet_b0', description: 'EfficientNet-B0 (Tan & Le 2019): MBConv blocks with squeeze-excitation and SiLU, torchvision names', build: (numClasses) => new EfficientNet({ numClasses }) },
};

export function modelNames(): string[] {
  return Object.keys(models);
}

export function modelSpec(name: string): ModelSpec {
  const m = Object.prototype.hasOwnProperty.call(models, name) ? models[name] : undefined;
  if (!m) throw new InputError(`unknown architecture '${name}' (known: ${modelNames().join(', ')})`);
  return { name, ...m };
}

export function buildModel(name: string, numClasses: number): Backbone {
  return modelSpec(name).build(numClasses);
}
