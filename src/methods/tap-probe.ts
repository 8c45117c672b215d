/**
 * tap-probe: a frozen backbone read at several tap points (the stem's output and block outputs),
 * each globally pooled (mean or max over H×W), concatenated, and fed to a small head (optionally one
 * hidden ReLU layer, dropout). It is the model `adafilter select` builds from the taps its
 * evolutionary search chose (src/select/), so a selection ends in an ordinary run folder that
 * `predict`, `eval` and `report` read.
 */
import { Tensor } from '../engine/tensor';
import { cat } from '../engine/creation';
import { Module } from '../nn/module';
import { Parameter } from '../nn/parameter';
import { Linear } from '../nn/linear';
import { dropout, relu } from '../nn/functional';
import type { Backbone as ModelBackbone } from '../models/backbone';
import { InputError } from '../errors';
import { Method, MethodModel, ParamRole, resolveOptions } from './method';
import type { OnnxEmitter } from '../io/onnx/export';
import { int, ints } from '../io/onnx/graph';
import { splitNames } from './layer-split';

export type TapPool = 'mean' | 'max';
export const TAP_POOLS: TapPool[] = ['mean', 'max'];

/** One tap: a point of the backbone (`stem` or a block name) and how its output is pooled. */
export interface Tap {
  name: string;
  pool: TapPool;
}

export interface TapProbeOptions {
  /** Comma-separated `NAME:POOL` (`stem:max,layer2.2:mean`); POOL mean or max; empty: the last block, mean. */
  taps: string;
  /** Width of the head's hidden ReLU layer; 0: a linear head. */
  hidden: number;
  /** Dropout before the head's last layer. */
  dropout: number;
}

export const tapProbeDefaults: TapProbeOptions = { taps: '', hidden: 0, dropout: 0 };

export function formatTaps(taps: Tap[]): string {
  return taps.map((t) => `${t.name}:${t.pool}`).join(',');
}

/** Parses a tap list against the backbone's tap names; a bad one is an InputError listing the valid ones. */
export function parseTaps(spec: string, backbone: Module): Tap[] {
  const names = splitNames(backbone);
  const taps = spec.split(',').map((s) => s.trim()).filter(Boolean).map((s): Tap => {
    const colon = s.lastIndexOf(':');
    const name = colon < 0 ? s : s.slice(0, colon), pool = colon < 0 ? 'mean' : s.slice(colon + 1);
    if (!names.includes(name)) throw new InputError(`tap '${name}' does not exist in this backbone; taps: ${names.join(', ')}`);
    if (!TAP_POOLS.includes(pool as TapPool)) throw new InputError(`tap '${s}': pool must be mean or max`);
    return { name, pool: pool as TapPool };
  });
  // None given: the last block, averaged (a linear probe when the head is linear).
  return taps.length ? taps : [{ name: names[names.length - 1], pool: 'mean' }];
}

/** Output channels at each tap name. */
export function tapWidths(backbone: Module): Map<string, number> {
  const b = backbone as unknown as ModelBackbone;
  const blocks = b.blocks();
  return new Map([['stem', blocks[0].inChannels], ...blocks.map((x): [string, number] => [x.name, x.outChannels])]);
}

/**
 * What the head does before its last linear layer, in the search (on cached features) and in the
 * final model alike: an optional hidden ReLU layer, then dropout.
 */
export function tapHeadBody(f: Tensor, hidden: Linear | null, p: number, training: boolean): Tensor {
  const h = hidden ? relu(hidden.forward(f)) : f;
  return p > 0 ? dropout(h, p, training) : h;
}

function pooled(y: Tensor, pool: TapPool): Tensor {
  return pool === 'mean' ? y.mean([2, 3]) : y.flatten(2).max(2)[0];
}

/**
 * Records tap outputs while the backbone runs: each block's forward is wrapped once (an own
 * `forward` on the instance; state dicts are unaffected); `stem` is the first block's input.
 */
class TapRecorder {
  #seen: Map<string, Tensor> | null = null;

  constructor(backbone: ModelBackbone, names: Set<string>) {
    const blocks = backbone.blocks();
    blocks.forEach((b, i) => {
      const wantIn = i === 0 && names.has('stem'), wantOut = names.has(b.name);
      if (!wantIn && !wantOut) return;
      const m = b.module as { forward: (x: Tensor) => Tensor };
      const forward = m.forward.bind(m);
      m.forward = (x: Tensor) => {
        if (wantIn) this.#seen?.set('stem', x);
        const y = forward(x);
        if (wantOut) this.#seen?.set(b.name, y);
        return y;
      };
    });
  }

  /** The tap outputs of one forward pass `run`. */
  record(run: () => void): Map<string, Tensor> {
    const seen = new Map<string, Tensor>();
    this.#seen = seen;
    try { run(); } finally { this.#seen = null; }
    return seen;
  }
}

export class TapProbeModel extends MethodModel {
  readonly taps: Tap[];
  readonly featureWidth: number;
  hiddenLayer: Linear | null;
  readonly #recorder: TapRecorder;

  constructor(backbone: Module, numClasses: number, readonly options: TapProbeOptions) {
    const taps = parseTaps(options.taps, backbone); // bad names fail before anything changes
    const widths = tapWidths(backbone);
    super('tap-probe', backbone, numClasses);
    this.taps = taps;
    this.featureWidth = taps.reduce((s, t) => s + widths.get(t.name)!, 0);
    this.#recorder = new TapRecorder(this.backbone as unknown as ModelBackbone, new Set(taps.map((t) => t.name)));
    this.hiddenLayer = options.hidden > 0 ? new Linear(this.featureWidth, options.hidden) : null;
    // The classifier keeps its name (fc, classifier.1) and takes the head's last layer's width.
    const inWidth = options.hidden > 0 ? options.hidden : this.featureWidth;
    const head = this.head, fresh = new Linear(inWidth, head.outFeatures, head.bias !== null);
    head.weight.dispose(); head.bias?.dispose();
    head.weight = fresh.weight; head.bias = fresh.bias;
    (head as { inFeatures: number }).inFeatures = inWidth;
    this.applyTrainability();
    this.train(this.training);
  }

  /** The pooled taps, concatenated in the order of `taps`: [N, featureWidth]. */
  tapFeatures(x: Tensor): Tensor {
    const seen = this.#recorder.record(() => { this.backbone.features(x); });
    return cat(this.taps.map((t) => pooled(seen.get(t.name)!, t.pool)), 1);
  }

  /**
   * What the classifier reads: the taps through the head's body (tapHeadBody); with no hidden
   * layer and no dropout, the pooled taps themselves. (MobileNetV2's classifier adds its own
   * dropout before the linear layer; the search's heads do not have it.)
   */
  override features(x: Tensor): Tensor {
    return tapHeadBody(this.tapFeatures(x), this.hiddenLayer, this.options.dropout, this.training);
  }

  /**
   * The evaluation forward in an ONNX graph: the backbone is emitted with its tap modules' outputs
   * (and the first block's input, for `stem`) recorded, its own classifier skipped (it is this
   * head, sized for the taps); then the pooling (ReduceMean / ReduceMax over H, W), the concatenation
   * and the head. The backbone's own pooled output is left unused (onnxruntime prunes it).
   */
  override toOnnx(e: OnnxEmitter, x: string): string {
    const blocks = (this.backbone as unknown as ModelBackbone).blocks();
    const wanted = new Map<Module, string>(blocks.filter((b) => this.taps.some((t) => t.name === b.name)).map((b) => [b.module, b.name]));
    const first = blocks[0].module, stem = this.taps.some((t) => t.name === 'stem');
    const seen = new Map<string, string>();
    let inside: Module | null = null;
    e.emitWith(this.backbone, x, (m, xin) => {
      if (m === this.head) return xin;
      if (m === inside) return null;
      if (m === first && stem) seen.set('stem', xin);
      const name = wanted.get(m);
      if (name === undefined) return null;
      inside = m;
      try {
        const y = e.emit(m, xin);
        seen.set(name, y);
        return y;
      } finally {
        inside = null;
      }
    });
    const pooledNames = this.taps.map((t) => e.g.one(t.pool === 'mean' ? 'ReduceMean' : 'ReduceMax', [seen.get(t.name)!], `taps/${t.name}/${t.pool}`,
      { axes: ints([2, 3]), keepdims: int(0) }));
    let h = pooledNames.length === 1 ? pooledNames[0] : e.g.one('Concat', pooledNames, 'taps/concat', { axis: int(1) });
    if (this.hiddenLayer) h = e.relu(e.linear(this.hiddenLayer, h, 'hiddenLayer'), 'hiddenLayer');
    return e.linear(this.head, h, this.headKey);
  }

  trainableParameters(): [Parameter, ParamRole][] {
    const own = [...(this.hiddenLayer?.parameters() ?? []), ...this.head.parameters()];
    return own.map((p): [Parameter, ParamRole] => [p, 'head']);
  }

  /** The backbone stays in eval mode (BN keeps its pretrained statistics). */
  override train(mode = true): this {
    super.train(mode);
    this.backbone.train(false);
    this.head.train(mode);
    this.hiddenLayer?.train(mode);
    this.training = mode;
    return this;
  }
}

export const tapProbe: Method<TapProbeOptions> = {
  name: 'tap-probe',
  description: 'frozen backbone read at several taps (stem, block outputs; mean/max pooled) with a small head (what `select` builds)',
  defaults: tapProbeDefaults,
  apply(backbone, numClasses, options) {
    const o = resolveOptions('tap-probe', tapProbeDefaults, options);
    if (typeof o.taps !== 'string') throw new InputError(`tap-probe: taps must be NAME:POOL,…, got ${JSON.stringify(o.taps)}`);
    if (!(Number.isInteger(o.hidden) && o.hidden >= 0 && o.hidden <= 65536)) throw new InputError(`tap-probe: hidden must be an integer in 0..65536, got ${o.hidden}`);
    if (!(typeof o.dropout === 'number' && o.dropout >= 0 && o.dropout < 1)) throw new InputError(`tap-probe: dropout must be in [0, 1), got ${o.dropout}`);
    return new TapProbeModel(backbone, numClasses, o);
  },
};
