import { aten, Tensor } from '../engine/tensor';
import { Conv2d, Conv2dConfig } from '../nn/conv';

/** Explicit zero padding [top, left, bottom, right], the order of ONNX Conv's `pads` attribute. */
export type Pads = [number, number, number, number];

/**
 * A Conv2d with explicit, possibly asymmetric zero padding, for weights trained in frameworks that
 * pad stride-2 convolutions only at the bottom/right (Keras/TF 'same' on even sizes, and
 * keras.applications' ZeroPadding2D((0,1),(0,1))). `padding` stays 0 and the padding lives in
 * `pads` so that exporters (ONNX `pads`) and code that copies a conv's settings can see it;
 * state-dict names are Conv2d's.
 */
export class PaddedConv2d extends Conv2d {
  readonly pads: Pads;

  constructor(inChannels: number, outChannels: number, kernelSize: number, pads: Pads, c: Omit<Conv2dConfig, 'padding'> = {}) {
    super(inChannels, outChannels, kernelSize, { ...c, padding: 0 });
    if (!pads.every((p) => Number.isInteger(p) && p >= 0)) throw new Error(`PaddedConv2d: pads must be non-negative integers, got [${pads}]`);
    this.pads = [...pads] as Pads;
  }

  override forward(x: Tensor): Tensor {
    const [top, left, bottom, right] = this.pads;
    if (top === 0 && left === 0 && bottom === 0 && right === 0) return super.forward(x);
    // constant_pad_nd lists the last dimension first: [left, right, top, bottom].
    return super.forward(aten('aten::constant_pad_nd', '', [x, [left, right, top, bottom], 0]));
  }
}
