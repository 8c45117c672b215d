/** Fashion-MNIST from Debian's dataset-fashion-mnist (gzipped IDX files). */
import * as fs from 'node:fs';
import { Dataset } from '../dataset';
import { openIdxDataset } from './mnist';
import { InputError } from '../../errors';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export function openFashionMnist(dir = FASHION_MNIST_DIR): Dataset {
  if (!fs.existsSync(dir)) {
    throw new InputError(`fashion-mnist: ${dir} not found (install the Debian package dataset-fashion-mnist)`);
  }
  return openIdxDataset({
    name: 'fashion-mnist',
    dir,
    files: {
      trainImages: 'train-images-idx3-ubyte.gz', trainLabels: 'train-labels-idx1-ubyte.gz',
      testImages: 't10k-images-idx3-ubyte.gz', testLabels: 't10k-labels-idx1-ubyte.gz',
    },
    classes: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
    source: `Debian dataset-fashion-mnist (${dir})`,
    license: 'MIT (Zalando Research)',
  });
}
