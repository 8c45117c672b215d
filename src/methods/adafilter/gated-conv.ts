import { aten, Tensor } from '../../engine/tensor';
import { noGrad } from '../../engine/autograd';
import { release } from '../../engine/scope';
import { cat, newFull } from '../../engine/creation';
import { deviceType } from '../../engine/device';
import { Module } from '../../nn/module';
import { Parameter } from '../../nn/parameter';
import { Conv2d } from '../../nn/conv';
import { PaddedConv2d, Pads } from '../../models/padded-conv';
import { BatchNorm2d } from '../../nn/batchnorm';
import { conv2d } from '../../nn/functional';
import { GatedBatchNorm } from './gated-bn';
import type { GatePass } from './gate';
import type { GateRecord } from '../forward-pass';
import type { OnnxEmitter } from '../../io/onnx/export';

/** When a gated layer may leave out a path whose filters no example in the batch chose. */
export type SkipPaths = 'exact' | 'always' | 'never';

/**
 * What the gated layers of one model share: settings, and during a pass only, that pass's gates and
 * the record list the model returns it with (the layers cannot be handed them: they run inside the
 * backbone's own forward).
 */
export class GateContext {
  /** 0 or 1: every gate forced to that value (tests, analysis); null: the gate source decides. */
  force: 0 | 1 | null = null;
  /** Like force, in training passes only (the warm start); evaluation still uses the gates. */
  trainForce: 0 | 1 | null = null;
  skip: SkipPaths = 'exact';
  /** The current pass: its gate source's pass, and where its layers append what they chose; null between passes. */
  pass: { gates: GatePass; records: GateRecord[] } | null = null;
}

/**
 * A convolution + BN pair under AdaFilter: frozen pretrained weights S (no weight gradient) and a
 * trainable copy F, mixed per example and per output filter by the gates, with gated BN.
 */
export class GatedConv extends Module {
  weight_s: Parameter;
  weight_f: Parameter;
  bias_s: Parameter | null;
  bias_f: Parameter | null;
  norm: GatedBatchNorm;
  readonly stride: number;
  readonly padding: number;
  readonly dilation: number;
  readonly groups: number;
  /** Explicit asymmetric padding of a Keras-style conv (PaddedConv2d), applied before both paths. */
  readonly pads: Pads | null;
  readonly outChannels: number;
  readonly inChannels: number;
  /**
   * Compute both paths with one convolution of 2C outputs and one BN call (same values). Off by
   * default: two convolutions, where S's has no weight gradient, and two BN calls are faster in
   * training (the fused convolution computes and discards S's weight gradient, and mixing two
   * narrowed halves of one tensor makes autograd build two zero-filled 2C gradients and add them).
   */
  fused: boolean;
  readonly #ctx: GateContext;

  constructor(readonly index: number, conv: Conv2d, bn: BatchNorm2d, ctx: GateContext, o: { singleBn: boolean; frozenBnAffine: boolean; pretrainedS?: boolean; fused?: boolean }) {
    super();
    this.#ctx = ctx;
    this.fused = o.fused ?? false;
    this.stride = conv.stride; this.padding = conv.padding; this.dilation = conv.dilation; this.groups = conv.groups;
    this.pads = conv instanceof PaddedConv2d ? [...conv.pads] as Pads : null;
    this.inChannels = conv.inChannels; this.outChannels = conv.outChannels;
    this.weight_s = conv.weight.requiresGrad_(false);
    this.weight_f = new Parameter(noGrad(() => conv.weight.clone()));
    this.bias_s = conv.bias ? conv.bias.requiresGrad_(false) : null;
    this.bias_f = conv.bias ? new Parameter(noGrad(() => conv.bias!.clone())) : null;
    this.norm = new GatedBatchNorm(bn, o.singleBn, o.frozenBnAffine, o.pretrainedS ?? false);
  }

  private conv(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
    return conv2d(x, w, b, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }

  forward(input: Tensor): Tensor {
    let x = input;
    const ctx = this.#ctx;
    const pass = ctx.pass;
    if (!pass) throw new Error('adafilter: a gated layer ran outside its model\'s forward pass');
    const batch = x.size(0);
    // Forced gates (a warm start, analysis) leave the gate network out of the pass altogether.
    const force = ctx.force ?? (this.training ? ctx.trainForce : null);
    const { g, z } = force !== null
      ? { g: newFull(x, [batch, this.outChannels], force), z: null }
      : pass.gates.gate(this.index, x, this.training);
    pass.records.push({ layer: this.index, g, z });
    const gateGrad = g.requiresGrad;
    // The gate reads the layer's input as it is; only the convolutions see the padding.
    if (this.pads && this.pads.some((p) => p > 0)) {
      const [top, left, bottom, right] = this.pads;
      x = aten('aten::constant_pad_nd', '', [x, [left, right, top, bottom], 0]);
    }
    let useF = true, useS = true;
    if (force !== null && ctx.skip !== 'never') {
      // Forced gates: the unused path is known without reading the gates back.
      useF = force === 1;
      useS = force === 0;
    } else if (ctx.skip === 'always' || (ctx.skip === 'exact' && !gateGrad && deviceType(x.device) === 'cpu')) {
      // Reading the gates back is free on the CPU and a stall per layer on a GPU, where 'exact'
      // runs both paths instead (the same values: lerp with a 0/1 gate returns one operand exactly).
      const ones = noGrad(() => g.sum().item());
      if (ones === g.numel) useS = false;
      else if (ones === 0) useF = false;
    }
    // A pretrained S path normalises with fixed statistics: it cannot share F's batch-statistics call.
    if (useF && useS && this.fused && !this.norm.pretrainedS) {
      // One convolution with 2C outputs [F; S] and one BN call: cheaper than two of each. A grouped
      // (depthwise) convolution cannot stack its filters that way (output group k reads input group k),
      // so it runs two convolutions and only the BN call is shared.
      if (this.groups !== 1) {
        return this.norm.forwardBoth(cat([this.conv(x, this.weight_f, this.bias_f), this.conv(x, this.weight_s, this.bias_s)], 1), g);
      }
      const w = cat([this.weight_f, this.weight_s]);
      const b = this.bias_f && this.bias_s ? cat([this.bias_f, this.bias_s]) : null;
      return this.norm.forwardBoth(this.conv(x, w, b), g);
    }
    const yF = useF ? this.conv(x, this.weight_f, this.bias_f) : null;
    const yS = useS ? this.conv(x, this.weight_s, this.bias_s) : null;
    const y = this.norm.forward(yF, yS, g, gateGrad);
    // Intermediates go as soon as they are read (engine/scope.ts chain()); the layer's input stays.
    release(yF, y);
    release(yS, y);
    if (x !== input) x.dispose();
    return y;
  }

  /**
   * This layer in evaluation in an ONNX graph, given the gates' boolean [B, C] value (null: every
   * gate forced to `force`): for each example and filter exactly one of BN_F(F*x), BN_S(S*x). Our
   * forward mixes with lerp, which for gates of exactly 0 or 1 returns one operand bit for bit;
   * Where does the same.
   */
  toOnnxGated(e: OnnxEmitter, x: string, n: string, gates: string | null, force: 0 | 1 | null): string {
    const cond = gates === null ? null : e.g.one('Reshape', [gates, e.g.ints('shape_gate', [-1, this.outChannels, 1, 1])], `gate.${this.index}/cond`);
    const yF = force !== 0 ? e.conv(this, this.weight_f, this.bias_f, x, `${n}.f`) : null;
    const yS = force !== 1 ? e.conv(this, this.weight_s, this.bias_s, x, `${n}.s`) : null;
    const norm = this.norm;
    if (norm.single) {
      const mixed = cond ? e.g.one('Where', [cond, yF!, yS!], `${n}/mix`) : (yF ?? yS)!;
      return e.bn(norm.bn!, mixed, `${n}.norm.bn`);
    }
    const a = yF ? e.bn(norm.bn_f!, yF, `${n}.norm.bn_f`) : null;
    const b = yS ? e.bn(norm.bn_s!, yS, `${n}.norm.bn_s`) : null;
    return cond ? e.g.one('Where', [cond, a!, b!], `${n}/mix`) : (a ?? b)!;
  }
}
