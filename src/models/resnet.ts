import { Tensor } from '../engine/tensor';
import { Module } from '../nn/module';
import { Conv2d } from '../nn/conv';
import { BatchNorm2d } from '../nn/batchnorm';
import { Linear } from '../nn/linear';
import { Sequential } from '../nn/sequential';
import * as F from '../nn/functional';
import { constant_, kaimingNormal_ } from '../nn/init';

/** Parameter names follow torchvision (conv1, bn1, layerK.I.conv1, downsample.0/1, fc). */
export class BasicBlock extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  downsample: Sequential | null;

  constructor(inPlanes: number, planes: number, stride = 1) {
    super();
    this.conv1 = new Conv2d(inPlanes, planes, 3, { stride, padding: 1, bias: false });
    this.bn1 = new BatchNorm2d(planes);
    this.conv2 = new Conv2d(planes, planes, 3, { padding: 1, bias: false });
    this.bn2 = new BatchNorm2d(planes);
    // Projection shortcut (1×1 conv + BN) wherever the shape changes, identity elsewhere.
    this.downsample = stride !== 1 || inPlanes !== planes
      ? new Sequential(new Conv2d(inPlanes, planes, 1, { stride, bias: false }), new BatchNorm2d(planes))
      : null;
  }

  forward(x: Tensor): Tensor {
    const out = this.bn2.forward(this.conv2.forward(F.relu(this.bn1.forward(this.conv1.forward(x)))));
    const shortcut = this.downsample ? this.downsample.forward(x) : x;
    return F.relu(out.add(shortcut));
  }
}

export interface ResNetConfig {
  /** Blocks per stage. */
  blocks: number[];
  /** Channels per stage. */
  widths: number[];
  /** 'cifar': 3×3 stride-1 stem, no max-pool; 'imagenet': 7×7 stride-2 stem + 3×3 max-pool. */
  stem: 'cifar' | 'imagenet';
  numClasses: number;
  inChannels?: number;
}

export class ResNet extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  layers: Sequential[];
  fc: Linear;
  readonly featureDim: number;

  constructor(readonly config: ResNetConfig) {
    super();
    const { blocks, widths, stem } = config;
    const inCh = config.inChannels ?? 3;
    this.conv1 = stem === 'cifar'
      ? new Conv2d(inCh, widths[0], 3, { padding: 1, bias: false })
      : new Conv2d(inCh, widths[0], 7, { stride: 2, padding: 3, bias: false });
    this.bn1 = new BatchNorm2d(widths[0]);
    let inPlanes = widths[0];
    this.layers = blocks.map((n, stage) => {
      const planes = widths[stage];
      const seq = new Sequential(...Array.from({ length: n }, (_, i) => {
        const b = new BasicBlock(inPlanes, planes, i === 0 && stage > 0 ? 2 : 1);
        inPlanes = planes;
        return b;
      }));
      return seq;
    });
    this.featureDim = inPlanes;
    this.fc = new Linear(inPlanes, config.numClasses);
    for (const m of this.modules()) {
      if (m instanceof Conv2d) kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu' });
      else if (m instanceof BatchNorm2d) { constant_(m.weight!, 1); constant_(m.bias!, 0); }
    }
  }

  /** torchvision's names: layer1, layer2, … rather than layers.0, layers.1. */
  override namedChildren(): [string, Module][] {
    return [['conv1', this.conv1], ['bn1', this.bn1],
      ...this.layers.map((l, i): [string, Module] => [`layer${i + 1}`, l]), ['fc', this.fc]];
  }

  /** Pooled features [N, featureDim] before the classifier. */
  features(x: Tensor): Tensor {
    let h = F.relu(this.bn1.forward(this.conv1.forward(x)));
    if (this.config.stem === 'imagenet') h = F.maxPool2d(h, 3, { stride: 2, padding: 1 });
    for (const l of this.layers) h = l.forward(h);
    return F.globalAvgPool(h);
  }

  forward(x: Tensor): Tensor {
    return this.fc.forward(this.features(x));
  }
}
