/**
 * ONNX export of a model's evaluation-mode forward pass, by walking our own module tree and emitting
 * for each module the same math its eval forward computes (no tracing: the engine has no tracer, and
 * walking keeps the per-example gates of AdaFilter and SpotTune explicit in the graph).
 *
 * This file knows the nn/ layers only. Every other module writes itself: a class with a
 * `toOnnx(e, x, name)` method (OnnxExportable) emits its own evaluation forward beside its own
 * code: the architecture families' blocks in models/, the method models and their layers in
 * methods/. So io/ imports neither.
 */
import { Tensor } from '../../engine/tensor';
import { zeros } from '../../engine/creation';
import { noGrad } from '../../engine/autograd';
import { tidy } from '../../engine/scope';
import { InputError } from '../../errors';
import { writeFileAtomic } from '../atomic';
import { Module } from '../../nn/module';
import { Conv2d } from '../../nn/conv';
import { BatchNorm2d } from '../../nn/batchnorm';
import { Linear } from '../../nn/linear';
import { Sequential } from '../../nn/sequential';
import { Dropout, Flatten, GlobalAvgPool, Identity, MaxPool2d, ReLU, ReLU6 } from '../../nn/basic';
import { DataType, encodeModel } from './onnx-model';
import { GraphBuilder, int, ints } from './graph';

export interface ExportOnnxOptions {
  /** Input shape [C, H, W] or [N, C, H, W]; the batch dimension is always dynamic ("N"). */
  inputShape: number[];
  /** ONNX opset, 13 to 17 (default 17). */
  opset?: number;
  /** Graph name (default: the model's class). */
  graphName?: string;
}


/** A module that writes its own evaluation forward into the graph; returns its output's value name. */
export interface OnnxExportable {
  toOnnx(e: OnnxEmitter, x: string, name: string): string;
}

export function isOnnxExportable(m: unknown): m is OnnxExportable {
  return typeof (m as Partial<OnnxExportable>)?.toOnnx === 'function';
}

/**
 * A module's emitter for one pass of a method model (AdaFilter's gated layers, SpotTune's blocks):
 * the value name of its output, or null when `m` is not one of its modules.
 */
export type OnnxOverride = (m: Module, x: string, name: string) => string | null;

export class OnnxEmitter {
  readonly #overrides: OnnxOverride[] = [];

  constructor(readonly g: GraphBuilder, readonly moduleNames: Map<Module, string>) {}

  name(m: Module): string {
    return this.moduleNames.get(m) || m.constructor.name;
  }

  /**
   * Emits `m` with `override` asked first for every module inside it. This is how a method model
   * hands its layers the state of this one graph (the gate recurrence, the policy's choice) without
   * storing it anywhere.
   */
  emitWith(m: Module, x: string, override: OnnxOverride): string {
    this.#overrides.push(override);
    try {
      return this.emit(m, x);
    } finally {
      this.#overrides.pop();
    }
  }

  emit(m: Module, x: string): string {
    const g = this.g;
    const n = this.name(m);
    for (let i = this.#overrides.length - 1; i >= 0; i--) {
      const y = this.#overrides[i](m, x, n);
      if (y !== null) return y;
    }
    if (isOnnxExportable(m)) return m.toOnnx(this, x, n);
    if (m instanceof Sequential) {
      let h = x;
      for (const l of m.layers) h = this.emit(l, h);
      return h;
    }
    if (m instanceof Conv2d) return this.conv(m, m.weight, m.bias, x, n);
    if (m instanceof BatchNorm2d) return this.bn(m, x, n);
    if (m instanceof ReLU) return g.one('Relu', [x], `${n}/relu`);
    if (m instanceof ReLU6) return this.relu6(x, n);
    if (m instanceof Identity || m instanceof Dropout) return x;
    if (m instanceof Flatten) return g.one('Flatten', [x], `${n}/flatten`, { axis: int(1) });
    if (m instanceof GlobalAvgPool) return this.gap(x, n);
    if (m instanceof MaxPool2d) return this.maxPool(m.kernel, m.stride, m.padding, x, `${n}/maxpool`);
    if (m instanceof Linear) return this.linear(m, x, n);
    throw new InputError(`ONNX export: module '${n}' of type ${m.constructor?.name ?? 'unknown'} is not supported`);
  }

  maxPool(kernel: number, stride: number, padding: number, x: string, base: string): string {
    return this.g.one('MaxPool', [x], base, { kernel_shape: ints([kernel, kernel]), strides: ints([stride, stride]), pads: ints([padding, padding, padding, padding]) });
  }


  relu(x: string, n: string): string {
    return this.g.one('Relu', [x], `${n}/relu`);
  }

  relu6(x: string, n: string): string {
    // hardtanh(0, 6) as our ReLU6 computes it.
    return this.g.one('Clip', [x, this.g.floats('const_zero', [0], []), this.g.floats('const_six', [6], [])], `${n}/relu6`);
  }

  /** Global average pooling to [N, C] (our globalAvgPool: mean over H, W). */
  gap(x: string, n: string): string {
    const p = this.g.one('GlobalAveragePool', [x], `${n}/gap`);
    return this.g.one('Flatten', [p], `${n}/flatten`, { axis: int(1) });
  }

  linear(m: Linear, x: string, n: string): string {
    const ins = [x, this.g.param(m.weight, `${n}.weight`)];
    if (m.bias) ins.push(this.g.param(m.bias, `${n}.bias`));
    return this.g.one('Gemm', ins, `${n}/gemm`, { transB: int(1) });
  }

  conv(m: { stride: number; padding: number; dilation: number; groups: number }, w: Tensor, b: Tensor | null, x: string, n: string): string {
    const k = w.shape;
    const ins = [x, this.g.param(w, `${n}.weight`)];
    if (b) ins.push(this.g.param(b, `${n}.bias`));
    return this.g.one('Conv', ins, `${n}/conv`, {
      kernel_shape: ints([k[2], k[3]]), strides: ints(pair(m.stride)), dilations: ints(pair(m.dilation)),
      pads: ints(pads(m.padding, (m as { pads?: unknown }).pads, n)), group: int(m.groups),
    });
  }

  bn(m: BatchNorm2d, x: string, n: string): string {
    const c = m.numFeatures;
    const scale = m.weight ? this.g.param(m.weight, `${n}.weight`) : this.g.floats(`${n}.ones`, new Array(c).fill(1));
    const bias = m.bias ? this.g.param(m.bias, `${n}.bias`) : this.g.floats(`${n}.zeros`, new Array(c).fill(0));
    return this.g.one('BatchNormalization', [x, scale, bias, this.g.param(m.running_mean, `${n}.running_mean`), this.g.param(m.running_var, `${n}.running_var`)],
      `${n}/bn`, { epsilon: { kind: 'float', v: m.eps } });
  }
}

function pair(v: number | number[]): number[] {
  return Array.isArray(v) ? [v[0], v[1]] : [v, v];
}

/** ONNX pads [top, left, bottom, right] from symmetric padding or explicit (Keras 'same'-style) pads. */
function pads(padding: number | number[], explicit: unknown, n: string): number[] {
  if (Array.isArray(explicit)) {
    if (explicit.length !== 4 || !explicit.every((p) => Number.isInteger(p) && p >= 0)) {
      throw new InputError(`ONNX export: conv '${n}' has pads ${JSON.stringify(explicit)}; expected [top, left, bottom, right]`);
    }
    return explicit as number[];
  }
  if (Array.isArray(padding)) {
    if (padding.length === 4) return padding;
    return [padding[0], padding[1], padding[0], padding[1]];
  }
  return [padding, padding, padding, padding];
}

/** The model's input channels, from its first convolution. */
function stemChannels(m: Module): number | null {
  for (const x of m.modules()) if (x instanceof Conv2d) return x.inChannels;
  return null;
}

/** Builds the ONNX bytes of a model's evaluation forward pass (exportOnnx writes them). */
export function encodeOnnx(model: Module, opts: ExportOnnxOptions): Uint8Array {
  const shape = opts.inputShape;
  if (!Array.isArray(shape) || (shape.length !== 3 && shape.length !== 4) || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new InputError(`ONNX export: inputShape must be [C, H, W] or [N, C, H, W] of positive integers, got ${JSON.stringify(shape)}`);
  }
  const [c, h, w] = shape.slice(-3);
  const opset = opts.opset ?? 17;
  if (!Number.isInteger(opset) || opset < 13 || opset > 17) throw new InputError(`ONNX export: opset must be 13 to 17, got ${opset}`);
  const inC = stemChannels(model);
  if (inC !== null && inC !== c) throw new InputError(`ONNX export: the model takes ${inC} input channels, inputShape says ${c}`);

  // Run our own eval forward once on that shape: it proves the shape fits (MobileNetV2 needs ≥ 32 px)
  // and gives the output width, without touching any state (eval BN does not update statistics).
  const modes = model.modules().map((m) => m.training);
  let classes: number;
  try {
    model.eval();
    classes = tidy(() => noGrad(() => model.forward(zeros([1, c, h, w])) as Tensor).size(1));
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`ONNX export: input shape [${c}, ${h}, ${w}] does not fit the model (${(e as Error).message.split('\n')[0]})`);
  } finally {
    model.modules().forEach((m, i) => { m.training = modes[i]; });
  }

  const tensorNames = new Map<Tensor, string>();
  for (const [k, t] of model.stateDict()) tensorNames.set(t, k);
  const moduleNames = new Map<Module, string>();
  for (const [k, m] of model.namedModules()) if (!moduleNames.has(m)) moduleNames.set(m, k);
  const g = new GraphBuilder(tensorNames);
  g.fresh('input');
  g.fresh('logits');
  const out = new OnnxEmitter(g, moduleNames).emit(model, 'input');
  g.nodes.push({ opType: 'Identity', inputs: [out], outputs: ['logits'], name: 'output' });

  return encodeModel({
    irVersion: 8, opset, producerName: 'adafilter', producerVersion: '0.1.0',
    graphName: opts.graphName ?? model.constructor.name,
    nodes: g.nodes, initializers: g.initializers,
    inputs: [{ name: 'input', elemType: DataType.FLOAT, shape: ['N', c, h, w] }],
    outputs: [{ name: 'logits', elemType: DataType.FLOAT, shape: ['N', classes] }],
    docString: 'evaluation-mode forward pass exported by adafilter',
  });
}

/**
 * Writes an ONNX graph of the model's evaluation-mode forward pass: input `input` [N, C, H, W]
 * float32 (N dynamic), output `logits` [N, classes]. Atomic: temporary file in the same folder,
 * fsync, rename. Supports our ResNets and MobileNetV2s, and method models (finetune, linear-probe,
 * l2sp, bss, adafilter and its nogbn / static variants, spottune); anything else is an InputError
 * naming the module.
 */
export function exportOnnx(model: Module, file: string, opts: ExportOnnxOptions): void {
  writeFileAtomic(file, encodeOnnx(model, opts));
}
