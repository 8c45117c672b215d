import { Tensor } from '../engine/tensor';
import { Module } from './module';
import * as F from './functional';

/** Parameter-free layers, so they can stand in a Sequential. */
export class ReLU extends Module {
  forward(x: Tensor): Tensor { return F.relu(x); }
}
export class ReLU6 extends Module {
  forward(x: Tensor): Tensor { return F.relu6(x); }
}
export class Identity extends Module {
  forward(x: Tensor): Tensor { return x; }
}
export class Flatten extends Module {
  forward(x: Tensor): Tensor { return x.flatten(1); }
}
export class GlobalAvgPool extends Module {
  forward(x: Tensor): Tensor { return F.globalAvgPool(x); }
}
export class MaxPool2d extends Module {
  constructor(readonly kernel: number, readonly stride = kernel, readonly padding = 0) { super(); }
  forward(x: Tensor): Tensor { return F.maxPool2d(x, this.kernel, { stride: this.stride, padding: this.padding }); }
}
export class Dropout extends Module {
  constructor(readonly p = 0.5) { super(); }
  forward(x: Tensor): Tensor { return F.dropout(x, this.p, this.training); }
}
