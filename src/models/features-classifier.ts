/**
 * torchvision's layout shared by MobileNetV2 and EfficientNet: `features` (a Sequential of stages),
 * global average pooling, `classifier` (dropout, then the linear head). The families differ in what
 * their features hold and how a new head is initialised; the rest is here once.
 */
import { Tensor } from '../engine/tensor';
import { Module } from '../nn/module';
import { Linear } from '../nn/linear';
import { Sequential } from '../nn/sequential';
import { Conv2d } from '../nn/conv';
import { BatchNorm2d } from '../nn/batchnorm';
import { Dropout } from '../nn/basic';
import { constant_, kaimingNormal_ } from '../nn/init';
import * as F from '../nn/functional';
import type { OnnxEmitter } from '../io/onnx/export';

export abstract class FeaturesClassifierNet extends Module {
  features_!: Sequential;
  classifier_!: Sequential;
  abstract readonly featureDim: number;

  /** A fresh head for `numClasses` classes, initialised as the family's torchvision constructor does. */
  protected abstract newHead(numClasses: number): Linear;

  /** Sets features and classifier, initialised as torchvision does: convs Kaiming fan-out, BN weight 1 and bias 0, the head by newHead. */
  protected assemble(layers: Module[], dropout: number, numClasses: number): void {
    this.features_ = new Sequential(...layers);
    this.classifier_ = new Sequential(new Dropout(dropout), this.newHead(numClasses));
    for (const m of this.features_.modules()) {
      if (m instanceof Conv2d) {
        kaimingNormal_(m.weight, { mode: 'fan_out' });
        if (m.bias) constant_(m.bias, 0);
      } else if (m instanceof BatchNorm2d) { constant_(m.weight!, 1); constant_(m.bias!, 0); }
    }
  }

  /** Whether a weight file's names are timm's (conv_stem., blocks.S.J.) rather than torchvision's. */
  usesTimmNames(names: string[]): boolean {
    return names.some((n) => n.startsWith('conv_stem.') || n.startsWith('blocks.'));
  }

  /** torchvision's names: `features`, `classifier` (the attributes carry a _ so methods can have those names). */
  override namedChildren(): [string, Module][] {
    return [['features', this.features_], ['classifier', this.classifier_]];
  }

  features(x: Tensor): Tensor {
    return F.globalAvgPool(this.features_.forward(x));
  }

  forward(x: Tensor): Tensor {
    return this.classifier_.forward(this.features(x));
  }

  toOnnx(e: OnnxEmitter, x: string, n: string): string {
    return e.emit(this.classifier_, e.gap(e.emit(this.features_, x), `${n}pool`));
  }

  protected layer(i: number): Module {
    return (this.features_ as unknown as Record<string, Module>)[String(i)];
  }

  classifier(): { name: string; module: Linear } {
    return { name: 'classifier.1', module: (this.classifier_ as unknown as Record<string, Linear>)['1'] };
  }

  resetClassifier(numClasses: number): void {
    const { module: old } = this.classifier();
    const fc = this.newHead(numClasses);
    fc.training = this.training;
    (this.classifier_ as unknown as Record<string, Module>)['1'] = fc;
    old.dispose();
  }
}
