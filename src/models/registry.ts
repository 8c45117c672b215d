import { Module } from '../nn/module';
import { ResNet } from './resnet';
import { InputError } from '../errors';

export interface ModelSpec {
  name: string;
  family: string;
  inputSize: number;
  description: string;
  build(numClasses: number): Module & { features(x: import('../engine/tensor').Tensor): import('../engine/tensor').Tensor };
}

const cifar = (n: number, desc: string): Omit<ModelSpec, 'name'> => ({
  family: 'resnet', inputSize: 32, description: desc,
  build: (numClasses) => new ResNet({ blocks: [n, n, n], widths: [16, 32, 64], stem: 'cifar', numClasses }),
});

const models: Record<string, Omit<ModelSpec, 'name'>> = {
  resnet20: cifar(3, 'CIFAR ResNet-20 (He et al. 2016): 3 stages × 3 BasicBlocks, widths 16/32/64'),
  resnet32: cifar(5, 'CIFAR ResNet-32: 3 stages × 5 BasicBlocks, widths 16/32/64'),
  resnet56: cifar(9, 'CIFAR ResNet-56: 3 stages × 9 BasicBlocks, widths 16/32/64'),
  'resnet18-cifar': {
    family: 'resnet', inputSize: 32,
    description: 'ResNet-18 for 32×32 inputs: 3×3 stride-1 stem, no max-pool, BasicBlocks [2,2,2,2], widths 64/128/256/512',
    build: (numClasses) => new ResNet({ blocks: [2, 2, 2, 2], widths: [64, 128, 256, 512], stem: 'cifar', numClasses }),
  },
};

export function modelNames(): string[] {
  return Object.keys(models);
}

export function modelSpec(name: string): ModelSpec {
  const m = models[name];
  if (!m) throw new InputError(`unknown architecture '${name}' (known: ${modelNames().join(', ')})`);
  return { name, ...m };
}

export function buildModel(name: string, numClasses: number) {
  return modelSpec(name).build(numClasses);
}
