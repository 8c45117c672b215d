import { Tensor } from '../../src/engine/tensor';
import { Module } from '../../src/nn/module';
import { Conv2d } from '../../src/nn/conv';
import { BatchNorm2d } from '../../src/nn/batchnorm';
import { Linear } from '../../src/nn/linear';
import * as F from '../../src/nn/functional';

/** A CNN small enough for thousands of steps in a test, with every layer kind a backbone has. */
export class SmallCnn extends Module {
  conv1 = new Conv2d(3, 8, 3, { padding: 1, bias: false });
  bn1 = new BatchNorm2d(8);
  conv2 = new Conv2d(8, 16, 3, { stride: 2, padding: 1 });
  fc = new Linear(16, 4);

  forward(x: Tensor): Tensor {
    const h = F.relu(this.bn1.forward(this.conv1.forward(x)));
    return this.fc.forward(F.globalAvgPool(F.relu(this.conv2.forward(h))));
  }
}
