/**
 * ONNX export of a model's evaluation-mode forward pass, by walking our own module tree and emitting
 * for each module the same math its eval forward computes (no tracing: the engine has no tracer, and
 * walking keeps the per-example gates of AdaFilter and SpotTune explicit in the graph).
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
import { BasicBlock, Bottleneck, ResNet } from '../../models/resnet';
import { InvertedResidual, MobileNetV2 } from '../../models/mobilenetv2';
import { MethodModel } from '../../methods/method';
import { getMethod } from '../../methods/registry';
import { AdaFilterModel } from '../../methods/adafilter';
import { GatedConv } from '../../methods/adafilter/gated-conv';
import { RecurrentGate, StaticGate } from '../../methods/adafilter/gate';
import { SpotTuneBlock, SpotTuneModel } from '../../methods/spottune';
import { DataType, encodeModel, NodeSpec, TensorSpec, AttrValue } from './onnx-model';

export interface ExportOnnxOptions {
  /** Input shape [C, H, W] or [N, C, H, W]; the batch dimension is always dynamic ("N"). */
  inputShape: number[];
  /** ONNX opset, 13 to 17 (default 17). */
  opset?: number;
  /** Graph name (default: the model's class). */
  graphName?: string;
}


/** Builds the node list and initializers; value names are unique. */
class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: TensorSpec[] = [];
  private readonly used = new Set<string>();
  private readonly tensorNames = new Map<Tensor, string>();
  private readonly constNames = new Map<string, string>();

  constructor(private readonly names: Map<Tensor, string>) {}

  fresh(base: string): string {
    let n = base, i = 1;
    while (this.used.has(n)) n = `${base}_${i++}`;
    this.used.add(n);
    return n;
  }

  /** A parameter or buffer as an initializer, under its state-dict name (once, however often used). */
  param(t: Tensor, fallback: string): string {
    const known = this.tensorNames.get(t);
    if (known) return known;
    const name = this.fresh(this.names.get(t) ?? fallback);
    const data = noGrad(() => t.toFloat32Array());
    this.initializers.push({ name, dims: t.shape, dataType: DataType.FLOAT, raw: bytes(data) });
    this.tensorNames.set(t, name);
    return name;
  }

  floats(base: string, values: number[], dims = [values.length]): string {
    const key = `f:${dims}:${values}`;
    const known = this.constNames.get(key);
    if (known) return known;
    const name = this.fresh(base);
    this.initializers.push({ name, dims, dataType: DataType.FLOAT, raw: bytes(Float32Array.from(values)) });
    this.constNames.set(key, name);
    return name;
  }

  ints(base: string, values: number[], dims = [values.length]): string {
    const key = `i:${dims}:${values}`;
    const known = this.constNames.get(key);
    if (known) return known;
    const name = this.fresh(base);
    this.initializers.push({ name, dims, dataType: DataType.INT64, raw: bytes(BigInt64Array.from(values.map(BigInt))) });
    this.constNames.set(key, name);
    return name;
  }

  node(opType: string, inputs: string[], base: string, attrs?: Record<string, AttrValue>, outputs = 1): string[] {
    const outs = Array.from({ length: outputs }, (_, i) => this.fresh(outputs === 1 ? base : `${base}_${i}`));
    this.nodes.push({ opType, inputs, outputs: outs, name: this.fresh(`${opType}:${base}`), attrs });
    return outs;
  }

  one(opType: string, inputs: string[], base: string, attrs?: Record<string, AttrValue>): string {
    return this.node(opType, inputs, base, attrs)[0];
  }
}

function bytes(a: Float32Array | BigInt64Array): Uint8Array {
  // The engine and ONNX both store little-endian; so does every platform Node runs on here.
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

const ints = (v: number[]): AttrValue => ({ kind: 'ints', v });
const int = (v: number): AttrValue => ({ kind: 'int', v });

/** Per-pass state of AdaFilter's recurrent gate while its gated layers are emitted in call order. */
interface GateState {
  model: AdaFilterModel;
  h: string | null;
  c: string | null;
}

class Emitter {
  adafilter: GateState | null = null;
  /** SpotTune: the [N, blocks] int64 argmax of the policy, and the forced choice if any. */
  spottune: { choice: string | null; force: 0 | 1 | null } | null = null;

  constructor(readonly g: GraphBuilder, readonly moduleNames: Map<Module, string>) {}

  name(m: Module): string {
    return this.moduleNames.get(m) || m.constructor.name;
  }

  emit(m: Module, x: string): string {
    const g = this.g;
    const n = this.name(m);
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
    if (m instanceof MaxPool2d) {
      return g.one('MaxPool', [x], `${n}/maxpool`, { kernel_shape: ints([m.kernel, m.kernel]), strides: ints([m.stride, m.stride]), pads: ints([m.padding, m.padding, m.padding, m.padding]) });
    }
    if (m instanceof Linear) return this.linear(m, x, n);
    if (m instanceof BasicBlock || m instanceof Bottleneck) {
      let h = this.relu(this.emit(m.bn1, this.emit(m.conv1, x)), `${n}.relu1`);
      if (m instanceof BasicBlock) {
        h = this.emit(m.bn2, this.emit(m.conv2, h));
      } else {
        h = this.relu(this.emit(m.bn2, this.emit(m.conv2, h)), `${n}.relu2`);
        h = this.emit(m.bn3, this.emit(m.conv3, h));
      }
      // The shortcut comes after the main path, as in forward(): AdaFilter's gate state advances in call order.
      const s = m.downsample ? this.emit(m.downsample, x) : x;
      return this.relu(g.one('Add', [h, s], `${n}/add`), `${n}.out`);
    }
    if (m instanceof InvertedResidual) {
      const y = this.emit(m.conv, x);
      return m.useResidual ? g.one('Add', [x, y], `${n}/add`) : y;
    }
    if (m instanceof ResNet) {
      let h = this.relu(this.emit(m.bn1, this.emit(m.conv1, x)), `${n || 'stem'}.relu`);
      if (m.config.stem === 'imagenet') {
        h = g.one('MaxPool', [h], `${n}maxpool`, { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) });
      }
      for (const l of m.layers) h = this.emit(l, h);
      return this.emit(m.fc, this.gap(h, `${n}pool`));
    }
    if (m instanceof MobileNetV2) {
      return this.emit(m.classifier_, this.gap(this.emit(m.features_, x), `${n}pool`));
    }
    if (m instanceof GatedConv) return this.gated(m, x, n);
    if (m instanceof SpotTuneBlock) return this.spotTuneBlock(m, x, n);
    throw new InputError(`ONNX export: module '${n}' of type ${m.constructor?.name ?? 'unknown'} is not supported`);
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

  /**
   * AdaFilter's gated layer in evaluation: gates [z > 0] from the shared LSTM (advanced here, in
   * call order), then for each example and filter exactly one of BN_F(F*x), BN_S(S*x). Our code
   * mixes with lerp, which for gates of exactly 0 or 1 returns one operand bit for bit; Where does
   * the same.
   */
  gated(m: GatedConv, x: string, n: string): string {
    const st = this.adafilter;
    if (!st) throw new InputError(`ONNX export: gated layer '${n}' outside an AdaFilter model`);
    const force = st.model.options.forceGates;
    let cond: string | null = null;
    if (force === null) {
      const gate = st.model.gate;
      if (gate instanceof RecurrentGate) cond = this.recurrentGate(gate, st, m.index, x);
      else if (gate instanceof StaticGate) {
        const z = this.g.param(gate.logits[m.index], `gate.logits.${m.index}`);
        cond = this.g.one('Greater', [z, this.g.floats('const_zero', [0], [])], `gate.${m.index}/greater`);
      } else {
        throw new InputError(`ONNX export: ${st.model.method} draws random gates at evaluation; a fixed graph cannot reproduce it`);
      }
      cond = this.g.one('Reshape', [cond, this.g.ints('shape_gate', [-1, m.outChannels, 1, 1])], `gate.${m.index}/cond`);
    }
    const useF = force !== 0, useS = force !== 1;
    const yF = useF ? this.conv(m, m.weight_f, m.bias_f, x, `${n}.f`) : null;
    const yS = useS ? this.conv(m, m.weight_s, m.bias_s, x, `${n}.s`) : null;
    const norm = m.norm;
    if (norm.single) {
      const mixed = cond ? this.g.one('Where', [cond, yF!, yS!], `${n}/mix`) : (yF ?? yS)!;
      return this.bn(norm.bn!, mixed, `${n}.norm.bn`);
    }
    const a = yF ? this.bn(norm.bn_f!, yF, `${n}.norm.bn_f`) : null;
    const b = yS ? this.bn(norm.bn_s!, yS, `${n}.norm.bn_s`) : null;
    return cond ? this.g.one('Where', [cond, a!, b!], `${n}/mix`) : (a ?? b)!;
  }

  /** One step of the shared LSTMCell (gates i, f, g, o, as torch.nn.LSTMCell) and the head's [z > 0]. */
  recurrentGate(gate: RecurrentGate, st: GateState, l: number, x: string): string {
    const g = this.g;
    const pooled = this.gap(x, `gate.${l}/in`);
    const u = this.linear(gate.proj[l], pooled, `gate.proj.${l}`);
    const lstm = gate.lstm;
    const hs = lstm.hiddenSize;
    const ih = [u, g.param(lstm.weight_ih, 'gate.lstm.weight_ih')];
    if (lstm.bias_ih) ih.push(g.param(lstm.bias_ih, 'gate.lstm.bias_ih'));
    let pre = g.one('Gemm', ih, `gate.${l}/lstm_ih`, { transB: int(1) });
    // The state starts at zero: h0·W_hhᵀ + b_hh is b_hh exactly and f·c0 is 0, so the first step
    // adds b_hh and skips the recurrent terms with the same values.
    if (st.h === null) {
      if (lstm.bias_hh) pre = g.one('Add', [pre, g.param(lstm.bias_hh, 'gate.lstm.bias_hh')], `gate.${l}/lstm_pre`);
    } else {
      const hh = [st.h, g.param(lstm.weight_hh, 'gate.lstm.weight_hh')];
      if (lstm.bias_hh) hh.push(g.param(lstm.bias_hh, 'gate.lstm.bias_hh'));
      pre = g.one('Add', [pre, g.one('Gemm', hh, `gate.${l}/lstm_hh`, { transB: int(1) })], `gate.${l}/lstm_pre`);
    }
    const [i4, f4, g4, o4] = g.node('Split', [pre, g.ints('lstm_split', [hs, hs, hs, hs])], `gate.${l}/lstm_chunk`, { axis: int(1) }, 4);
    const i = g.one('Sigmoid', [i4], `gate.${l}/lstm_i`);
    const gg = g.one('Tanh', [g4], `gate.${l}/lstm_g`);
    const o = g.one('Sigmoid', [o4], `gate.${l}/lstm_o`);
    const ig = g.one('Mul', [i, gg], `gate.${l}/lstm_ig`);
    let c: string;
    if (st.c === null) c = ig;
    else {
      const f = g.one('Sigmoid', [f4], `gate.${l}/lstm_f`);
      c = g.one('Add', [g.one('Mul', [f, st.c], `gate.${l}/lstm_fc`), ig], `gate.${l}/lstm_c`);
    }
    const h = g.one('Mul', [o, g.one('Tanh', [c], `gate.${l}/lstm_tanh_c`)], `gate.${l}/lstm_h`);
    st.h = h;
    st.c = c;
    const z = this.linear(gate.heads[l], h, `gate.heads.${l}`);
    return g.one('Greater', [z, g.floats('const_zero', [0], [])], `gate.${l}/greater`);
  }

  /** SpotTune in evaluation: the argmax choice of the policy picks one copy per example (lerp with 0/1 = Where). */
  spotTuneBlock(m: SpotTuneBlock, x: string, n: string): string {
    const st = this.spottune;
    if (!st) throw new InputError(`ONNX export: SpotTune block '${n}' outside a SpotTune model`);
    if (st.force === 1) return this.emit(m.tuned, x);
    if (st.force === 0) return this.emit(m.frozen, x);
    const g = this.g;
    const pick = g.one('Gather', [st.choice!, g.ints(`block_${m.index}`, [m.index], [])], `${n}/choice`, { axis: int(1) });
    const cond = g.one('Reshape', [g.one('Cast', [pick], `${n}/choice_bool`, { to: int(DataType.BOOL) }), g.ints('shape_choice', [-1, 1, 1, 1])], `${n}/cond`);
    // Both copies in call order as our forward runs them (frozen first), though neither has state.
    const frozen = this.emit(m.frozen, x);
    const tuned = this.emit(m.tuned, x);
    return g.one('Where', [cond, tuned, frozen], `${n}/mix`);
  }

  /** The whole model: a backbone, or a method model around one. */
  model(m: Module, x: string): string {
    if (!(m instanceof MethodModel)) return this.emit(m, x);
    if (m instanceof AdaFilterModel) {
      this.adafilter = { model: m, h: null, c: null };
    } else if (m instanceof SpotTuneModel) {
      const force = m.options.forcePolicy;
      let choice: string | null = null;
      if (force === null) {
        const logits = this.emit(m.policy, x);
        const r = this.g.one('Reshape', [logits, this.g.ints('shape_policy', [0, m.blocks.length, 2])], 'policy/logits');
        choice = this.g.one('ArgMax', [r], 'policy/choice', { axis: int(2), keepdims: int(0), select_last_index: int(0) });
      }
      this.spottune = { choice, force };
    } else if (!getMethod(m.method).evaluatesAsBackbone) {
      throw new InputError(`ONNX export: method '${m.method}' (${m.constructor.name}) is not supported`);
    }
    // A method model's forward is its head path on the backbone's features: the backbone's own forward.
    return this.emit(m.backbone, x);
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
  const e = new Emitter(g, moduleNames);
  const out = e.model(model, 'input');
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
