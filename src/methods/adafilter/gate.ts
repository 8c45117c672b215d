/**
 * The gates of AdaFilter: per example and per filter of each gated layer, 1 = fine-tuned filter F,
 * 0 = pretrained filter S. Three sources: the recurrent gate network (the method), per-filter static
 * logits (ablation adafilter-static) and random choices at a given fraction (ablation random-filter).
 */
import { aten, Tensor } from '../../engine/tensor';
import { cat, full, newEmpty, newZeros } from '../../engine/creation';
import { isGradEnabled, noGrad } from '../../engine/autograd';
import { Module } from '../../nn/module';
import { Parameter } from '../../nn/parameter';
import { Linear } from '../../nn/linear';
import { LSTMCell } from '../../nn/lstm-cell';
import { globalAvgPool, sigmoid, tanh } from '../../nn/functional';
import { constant_ } from '../../nn/init';
import type { OnnxEmitter } from '../../io/onnx/export';
import { int } from '../../io/onnx/graph';
import { atLeastFloat32 } from '../../engine/precision';
import { perExample } from '../../engine/random';

/** Channels in and out of each gated layer, in forward order. */
export interface GatedLayerShape {
  inChannels: number;
  outChannels: number;
}

/**
 * How a training pass turns gate logits into 0/1 gates (evaluation is always the deterministic
 * [z > 0]):
 * - 'st': deterministic straight-through, forward [σ(z) > ½] = [z > 0], backward d/dz σ(z/τ) — the
 *   same function in training and evaluation (SkipNet's recurrent gate);
 * - 'gumbel': straight-through Gumbel-sigmoid, forward [z + L > 0] with L standard logistic noise
 *   (std 1.8): training gates are Bernoulli(σ(z)) samples;
 * - 'gumbel-anneal': as gumbel with the noise scaled by 1 − progress / annealEnd, reaching 0 at
 *   annealEnd of the run, so the last part trains the configuration that is evaluated.
 */
export type GateMode = 'st' | 'gumbel' | 'gumbel-anneal';
export const GATE_MODES: readonly GateMode[] = ['st', 'gumbel', 'gumbel-anneal'];

/**
 * Straight-through gate: s = sigmoid((z + noise) / tau); the forward value is exactly [s > 0.5]
 * (hard + (s − s), so no rounding), the gradient that of s. tau never changes the forward value
 * ([σ(v/τ) > ½] = [v > 0]); it is the temperature of the surrogate whose gradient is used. Without
 * noise (or a zero noise scale) this is the deterministic straight-through gate.
 */
export function gumbelSigmoidST(z: Tensor, tau: number, noise?: Tensor | null, noiseScale = 1): Tensor {
  const d = noise === undefined ? gumbelDifference(z.shape, z) : noise;
  const zn = d && noiseScale > 0 ? z.add(d, noiseScale) : z;
  const s = sigmoid(tau === 1 ? zn : zn.div(tau));
  // s + (hard − s) is exactly hard: for s ≤ 0.5, hard − s = −s; for s > 0.5, 1 − s is exact
  // (Sterbenz) and s + (1 − s) = 1. One graph node (add) instead of two.
  const c = noGrad(() => s.gt(0.5).to(s.dtype).sub_(s));
  return s.add(c);
}

/**
 * G1 − G2 for independent standard Gumbel G1, G2 (a standard logistic sample), without gradient, in
 * the dtype and on the device of `like` (the logits it is added to). shape[0] is the batch: the
 * draw is per example (perExample), so a data-parallel rank gets its rows of the global batch's noise.
 */
export function gumbelDifference(shape: number[], like: Tensor): Tensor {
  return noGrad(() => {
    const e = perExample([2, ...shape], 1, (s) => newEmpty(like, s).exponential_(1)).log(); // log E = −G
    return e.select(0, 1).sub(e.select(0, 0));
  });
}

/**
 * The noise of one forward pass for every gated layer at once, sampled on first use (one draw per
 * pass instead of two per layer); layer l reads its slice.
 */
class PassNoise {
  #noise: Tensor | null = null;
  readonly #offsets: number[] = [];
  readonly #total: number;

  constructor(readonly channels: number[]) {
    let o = 0;
    for (const c of channels) { this.#offsets.push(o); o += c; }
    this.#total = o;
  }

  get(layer: number, batch: number, like: Tensor): Tensor {
    if (!this.#noise) this.#noise = gumbelDifference([batch, this.#total], like);
    return this.#noise.narrow(1, this.#offsets[layer], this.channels[layer]);
  }
}

/** Deterministic evaluation gate [z > 0]. */
export function hardGate(z: Tensor): Tensor {
  return noGrad(() => z.gt(0).to(z.dtype));
}

const logit = (p: number) => Math.log(p / (1 - p));

/**
 * Global average pool of the gate's input [B, C, H, W] → [B, C]. When a gradient flows back into x it
 * is sum(H, W) / (H·W): the same values as aten::mean (which is that sum, then a division), but its
 * backward is an expand of the [B, C] gradient instead of a full-size division per gated layer (mean's
 * backward; the gate network's single largest backward cost at resnet20's sizes).
 * Otherwise (evaluation, detached input) plain globalAvgPool.
 */
export function gatePool(x: Tensor, detach: boolean): Tensor {
  if (detach || !x.requiresGrad || !isGradEnabled()) return globalAvgPool(detach ? x.detach() : x);
  return x.sum([2, 3]).div(x.size(2) * x.size(3));
}

let oneDnnLinear: boolean | null = null;

/** y = x·Wᵀ + b through oneDNN (aten::mkldnn_linear), with autograd; null where unavailable. */
function linearOneDnn(x: Tensor, w: Tensor, b: Tensor | null): Tensor | null {
  if (oneDnnLinear === false) return null;
  try {
    const y = aten('aten::to_dense', '', [aten('aten::mkldnn_linear', '', [aten('aten::to_mkldnn', '', [x]), w, b])]);
    oneDnnLinear = true;
    return y;
  } catch {
    oneDnnLinear = false;
    return null;
  }
}

/**
 * One LSTMCell step (gates i, f, g, o as torch.nn.LSTMCell) with both input products as one
 * oneDNN matrix product [x, h]·[W_ih, W_hh]ᵀ + (b_ih + b_hh), given w = [W_ih, W_hh] and
 * b = b_ih + b_hh. Same function as aten::lstm_cell (values within float rounding); used for
 * training passes on CPU because the BLAS path of lstm_cell is the gate network's largest cost with
 * an OpenBLAS that falls back to its generic kernels. Null where oneDNN is unavailable.
 */
export function lstmStepOneDnn(x: Tensor, h: Tensor, c: Tensor, w: Tensor, b: Tensor | null): [Tensor, Tensor] | null {
  const gates = linearOneDnn(cat([x, h], 1), w, b);
  if (!gates) return null;
  const n = h.size(1);
  const s = sigmoid(gates);
  const g = tanh(gates.narrow(1, 2 * n, n));
  const c1 = aten('aten::addcmul', '', [s.narrow(1, n, n).mul(c), s.narrow(1, 0, n), g]);
  return [s.narrow(1, 3 * n, n).mul(tanh(c1)), c1];
}

/** What a gate source produced for one layer: the 0/1 gates [B, C] and, when it has any, their logits. */
export interface LayerGates {
  g: Tensor;
  z: Tensor | null;
}


/**
 * One forward pass's gates: layer l's, given that layer's input x [B, C_in, H, W], asked in layer
 * order. What the pass carries from layer to layer (the recurrent state, the pass's noise) lives in
 * this object, which the pass drops at its end: nothing of it stays in the gate network.
 */
export interface GatePass {
  gate(layer: number, x: Tensor, training: boolean): LayerGates;
}

/** A source of gates for the gated layers. */
export interface GateSource extends Module {
  /** The gates of a forward pass of a batch of `batch` examples. */
  start(batch: number): GatePass;
  /** Biases of the gate network (no weight decay). */
  biasParameters(): Parameter[];
  /** The evaluation gates in an ONNX graph; null when they are random (no fixed graph gives them). */
  onnxGates(): OnnxGates | null;
}

/**
 * The evaluation gates of one ONNX graph: for gated layer `layer` with input value `x`, the value
 * name of its boolean gates [z > 0]. A recurrent source keeps its graph's LSTM state in the closure.
 */
export type OnnxGates = (e: OnnxEmitter, layer: number, x: string) => string;

export interface RecurrentGateOptions {
  /** Gate input size d (P_l: C_in → d). */
  inputSize: number;
  /** LSTM hidden size H. */
  hiddenSize: number;
  /** Temperature of the straight-through surrogate (gradient only; see gumbelSigmoidST). */
  tau: number;
  /** Starting fraction of fine-tuned filters: the bias of every Q_l is logit(fraction). */
  initFraction: number;
  /** Stop gradients from the gate into the backbone activations it reads. */
  detachInput: boolean;
}

/** A training-mode gate from logits z; noise is drawn only when its scale is above 0 ('st' has 0). */
function trainingGate(z: Tensor, tau: number, noiseScale: number, draw: () => Tensor): Tensor {
  return noiseScale > 0 ? gumbelSigmoidST(z, tau, draw(), noiseScale) : gumbelSigmoidST(z, tau, null);
}

/** One pass of the recurrent gate: the shared LSTM state from (h0, c0) = 0, advanced layer by layer. */
export class RecurrentPass implements GatePass {
  #state: [Tensor, Tensor];
  /** [W_ih, W_hh] and b_ih + b_hh for the oneDNN LSTM step of this pass (training only). */
  #stacked: { w: Tensor; b: Tensor | null } | null = null;
  readonly #noise: PassNoise;

  constructor(readonly net: RecurrentGate, batch: number, channels: number[]) {
    const h = net.options.hiddenSize;
    const w = net.lstm.weight_ih;
    this.#state = [newZeros(w, [batch, h]), newZeros(w, [batch, h])];
    this.#noise = new PassNoise(channels);
  }

  /**
   * Advances the shared LSTM state by one step. In a training pass that records gradients, on CPU in
   * float32, the step runs as lstmStepOneDnn (same function, faster); otherwise, and always in
   * evaluation, it is lstm.forward (aten::lstm_cell).
   */
  #step(u: Tensor, state: [Tensor, Tensor], training: boolean): [Tensor, Tensor] {
    const cell = this.net.lstm;
    if (training && oneDnnLinear !== false && isGradEnabled() && u.dtype === 'float32' && u.device === 'cpu') {
      if (!this.#stacked) {
        const b = cell.bias_ih && cell.bias_hh ? cell.bias_ih.add(cell.bias_hh) : cell.bias_ih ?? cell.bias_hh;
        this.#stacked = { w: cat([cell.weight_ih, cell.weight_hh], 1), b };
      }
      const r = lstmStepOneDnn(u, state[0], state[1], this.#stacked.w, this.#stacked.b);
      if (r) return r;
    }
    return cell.forward(u, state);
  }

  /** Gate logits z_l [B, C] for layer l; advances the shared LSTM state. */
  logits(layer: number, x: Tensor, training = false): Tensor {
    const net = this.net;
    const u = net.proj[layer].forward(gatePool(x, net.options.detachInput));
    this.#state = this.#step(u, this.#state, training);
    return net.heads[layer].forward(this.#state[0]);
  }

  gate(layer: number, x: Tensor, training: boolean): LayerGates {
    // Under bf16 autocast the head's logits are bf16: the straight-through decision is taken in fp32.
    const z = atLeastFloat32(this.logits(layer, x, training));
    const g = training ? trainingGate(z, this.net.options.tau, this.net.noiseScale, () => this.#noise.get(layer, z.size(0), z)) : hardGate(z);
    return { g, z };
  }
}

/**
 * The AdaFilter gate: one LSTM cell shared across gated layers, run interleaved with the forward
 * pass in layer order from (h0, c0) = 0; per layer an input projection P_l (GAP of the layer's input
 * → d) and a head Q_l (h_l → C gate logits).
 */
export class RecurrentGate extends Module implements GateSource {
  lstm: LSTMCell;
  proj: Linear[];
  heads: Linear[];
  readonly #channels: number[];
  /**
   * Multiplier of the training passes' logistic noise, set by the method from its gate mode and the
   * run's progress: 0 deterministic straight-through, 1 Gumbel, in between gumbel-anneal.
   */
  noiseScale = 1;

  constructor(layers: GatedLayerShape[], readonly options: RecurrentGateOptions) {
    super();
    this.#channels = layers.map((l) => l.outChannels);
    this.lstm = new LSTMCell(options.inputSize, options.hiddenSize);
    this.proj = layers.map((l) => new Linear(l.inChannels, options.inputSize));
    this.heads = layers.map((l) => {
      const q = new Linear(options.hiddenSize, l.outChannels);
      constant_(q.bias!, options.initFraction === 0.5 ? 0 : logit(options.initFraction));
      return q;
    });
  }

  start(batch: number): RecurrentPass {
    return new RecurrentPass(this, batch, this.#channels);
  }

  /** As start(): a gate network's forward is the start of a pass. */
  forward(batch: number): RecurrentPass {
    return this.start(batch);
  }

  biasParameters(): Parameter[] {
    return [this.lstm.bias_ih, this.lstm.bias_hh, ...this.proj.map((p) => p.bias), ...this.heads.map((q) => q.bias)]
      .filter((p): p is Parameter => p !== null);
  }

  /** One step of the shared LSTMCell per gated layer (gates i, f, g, o, as torch.nn.LSTMCell), then the head's [z > 0]. */
  onnxGates(): OnnxGates {
    let state: { h: string; c: string } | null = null;
    return (e, l, x) => {
      const g = e.g;
      const u = e.linear(this.proj[l], e.gap(x, `gate.${l}/in`), `gate.proj.${l}`);
      const lstm = this.lstm;
      const hs = lstm.hiddenSize;
      const ih = [u, g.param(lstm.weight_ih, 'gate.lstm.weight_ih')];
      if (lstm.bias_ih) ih.push(g.param(lstm.bias_ih, 'gate.lstm.bias_ih'));
      let pre = g.one('Gemm', ih, `gate.${l}/lstm_ih`, { transB: int(1) });
      // The state starts at zero: h0·W_hhᵀ + b_hh is b_hh exactly and f·c0 is 0, so the first step
      // adds b_hh and skips the recurrent terms with the same values.
      if (state === null) {
        if (lstm.bias_hh) pre = g.one('Add', [pre, g.param(lstm.bias_hh, 'gate.lstm.bias_hh')], `gate.${l}/lstm_pre`);
      } else {
        const hh = [state.h, g.param(lstm.weight_hh, 'gate.lstm.weight_hh')];
        if (lstm.bias_hh) hh.push(g.param(lstm.bias_hh, 'gate.lstm.bias_hh'));
        pre = g.one('Add', [pre, g.one('Gemm', hh, `gate.${l}/lstm_hh`, { transB: int(1) })], `gate.${l}/lstm_pre`);
      }
      const [i4, f4, g4, o4] = g.node('Split', [pre, g.ints('lstm_split', [hs, hs, hs, hs])], `gate.${l}/lstm_chunk`, { axis: int(1) }, 4);
      const i = g.one('Sigmoid', [i4], `gate.${l}/lstm_i`);
      const gg = g.one('Tanh', [g4], `gate.${l}/lstm_g`);
      const o = g.one('Sigmoid', [o4], `gate.${l}/lstm_o`);
      const ig = g.one('Mul', [i, gg], `gate.${l}/lstm_ig`);
      let c: string;
      if (state === null) c = ig;
      else {
        const f = g.one('Sigmoid', [f4], `gate.${l}/lstm_f`);
        c = g.one('Add', [g.one('Mul', [f, state.c], `gate.${l}/lstm_fc`), ig], `gate.${l}/lstm_c`);
      }
      const h = g.one('Mul', [o, g.one('Tanh', [c], `gate.${l}/lstm_tanh_c`)], `gate.${l}/lstm_h`);
      state = { h, c };
      const z = e.linear(this.heads[l], h, `gate.heads.${l}`);
      return g.one('Greater', [z, g.floats('const_zero', [0], [])], `gate.${l}/greater`);
    };
  }
}

/** Ablation adafilter-static: per-filter learned logits, the same for every example. */
export class StaticGate extends Module implements GateSource {
  logits: Parameter[];
  readonly #channels: number[];
  /** As RecurrentGate's. */
  noiseScale = 1;

  constructor(layers: GatedLayerShape[], readonly options: { tau: number; initFraction: number }) {
    super();
    this.#channels = layers.map((l) => l.outChannels);
    const b = options.initFraction === 0.5 ? 0 : logit(options.initFraction);
    this.logits = layers.map((l) => new Parameter(full([l.outChannels], b)));
  }

  start(batch: number): GatePass {
    const noise = new PassNoise(this.#channels);
    return {
      gate: (layer, _x, training) => {
        const c = this.logits[layer].size(0);
        const z = this.logits[layer].unsqueeze(0).expand(batch, c);
        const g = training ? trainingGate(z, this.options.tau, this.noiseScale, () => noise.get(layer, batch, z)) : hardGate(z);
        return { g, z };
      },
    };
  }

  /** As start(). */
  forward(batch: number): GatePass {
    return this.start(batch);
  }

  biasParameters(): Parameter[] {
    return this.logits;
  }

  onnxGates(): OnnxGates {
    return (e, l) => e.g.one('Greater', [e.g.param(this.logits[l], `gate.logits.${l}`), e.g.floats('const_zero', [0], [])], `gate.${l}/greater`);
  }
}

/**
 * Ablation random-filter: each example picks each filter's fine-tuned copy with probability
 * fraction (one number, or one per gated layer), in training and in evaluation; no gate network.
 */
export class RandomGate extends Module implements GateSource {
  #batch = 0;

  constructor(readonly layers: GatedLayerShape[], readonly fraction: number | number[]) {
    super();
    if (Array.isArray(fraction) && fraction.length !== layers.length) {
      throw new Error(`random-filter: ${fraction.length} fractions for ${layers.length} gated layers`);
    }
  }

  start(batch: number): GatePass {
    return {
      gate: (layer, x) => {
        const p = Array.isArray(this.fraction) ? this.fraction[layer] : this.fraction;
        return { g: noGrad(() => perExample([batch, this.layers[layer].outChannels], 0, (s) => newEmpty(x, s).uniform_(0, 1)).lt(p).to(x.dtype)), z: null };
      },
    };
  }

  /** As start(). */
  forward(batch: number): GatePass {
    return this.start(batch);
  }

  biasParameters(): Parameter[] {
    return [];
  }

  onnxGates(): null {
    return null;
  }
}
