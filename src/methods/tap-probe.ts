/**
 * tap-probe: frozen backbones read at several tap points (the stem's output and block outputs),
 * each globally pooled (mean or max over H×W), concatenated, and fed to a small head (optionally one
 * hidden ReLU layer, dropout). It is the model `adafilter select` builds from the taps its
 * evolutionary search chose (src/select/), so a selection ends in an ordinary run folder that
 * `predict`, `eval` and `report` read.
 *
 * Backbone 0 is the run's own (`--backbone`); a selection over several backbones adds backbones
 * 1, 2, … (option `backbones`), whose taps are written `NAME@K`. The run's images are prepared for
 * backbone 0 (its size, channels, normalisation); each further backbone shares size and channels
 * and converts the normalisation in the model (x·σ₀/σₖ + (μ₀ − μₖ)/σₖ per channel), which equals its
 * own preprocessing up to float32 rounding of that affine map.
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
import { fromTyped } from '../engine/creation';
import { onDevice } from '../engine/device';
import type { Stats } from '../data/transforms';
import { ArchOptions, rebuildArchitecture } from '../models/arch-options';
import { openBackbone } from '../train/backbones';

export type TapPool = 'mean' | 'max';
export const TAP_POOLS: TapPool[] = ['mean', 'max'];

/** One tap: a point (`stem` or a block name) of backbone `backbone` (0: the run's own) and how its output is pooled. */
export interface Tap {
  backbone: number;
  name: string;
  pool: TapPool;
}

/** A further frozen backbone of a tap-probe model, as run.json records it (rebuilt without its weights file). */
export interface ExtraBackbone {
  /** The `--backbone` spec its pretrained weights are read from when a run starts. */
  spec: string;
  arch: string;
  archOptions?: ArchOptions;
  /** Its input normalisation (of 0..1 pixels), resolved. */
  normalize: Stats;
}

export interface TapProbeOptions {
  /** Comma-separated `NAME:POOL` (`stem:max,layer2.2:mean`); POOL mean or max; empty: the last block, mean. */
  taps: string;
  /** Width of the head's hidden ReLU layer; 0: a linear head. */
  hidden: number;
  /** Dropout before the head's last layer. */
  dropout: number;
  /** Backbones 1, 2, … beside the run's own, for taps `NAME@K` (what `select --backbone A --backbone B` records); empty: one backbone. */
  backbones: ExtraBackbone[];
  /** The normalisation the run's images carry (backbone 0's, resolved); needed with `backbones`. */
  inputStats: Stats | null;
}

export const tapProbeDefaults: TapProbeOptions = { taps: '', hidden: 0, dropout: 0, backbones: [], inputStats: null };

/** A tap point's name in a tap list: `NAME` on backbone 0, `NAME@K` on backbone K. */
export function tapId(t: { backbone: number; name: string }): string {
  return t.backbone === 0 ? t.name : `${t.name}@${t.backbone}`;
}

/** The inverse of tapId (`layer2.1@1` → backbone 1, layer2.1); no `@`: backbone 0. */
export function parseTapId(id: string): { backbone: number; name: string } {
  const at = id.lastIndexOf('@');
  if (at < 0) return { backbone: 0, name: id };
  const k = id.slice(at + 1);
  if (!/^[1-9][0-9]*$/.test(k)) throw new InputError(`tap '${id}': the backbone after @ must be a number 1, 2, …`);
  return { backbone: Number(k), name: id.slice(0, at) };
}

export function formatTaps(taps: Tap[]): string {
  return taps.map((t) => `${tapId(t)}:${t.pool}`).join(',');
}

/**
 * Parses a tap list against the backbones' tap names (backbone 0 first); a bad one is an
 * InputError listing the valid ones.
 */
export function parseTaps(spec: string, backbone: Module, extras: { model: Module; spec: string }[] = []): Tap[] {
  const names = [backbone, ...extras.map((e) => e.model)].map((m) => splitNames(m));
  const taps = spec.split(',').map((s) => s.trim()).filter(Boolean).map((s): Tap => {
    const colon = s.lastIndexOf(':');
    const id = colon < 0 ? s : s.slice(0, colon), pool = colon < 0 ? 'mean' : s.slice(colon + 1);
    const { backbone: k, name } = parseTapId(id);
    if (k >= names.length) {
      throw new InputError(`tap '${id}': there is no backbone ${k} (${names.length === 1 ? 'this model reads one backbone' : `this model reads backbones 0..${names.length - 1}`})`);
    }
    if (!names[k].includes(name)) {
      const which = k === 0 ? 'this backbone' : `backbone ${k} (${extras[k - 1].spec})`;
      throw new InputError(`tap '${id}' does not exist in ${which}; taps: ${names[k].join(', ')}`);
    }
    if (!TAP_POOLS.includes(pool as TapPool)) throw new InputError(`tap '${s}': pool must be mean or max`);
    return { backbone: k, name, pool: pool as TapPool };
  });
  // None given: the last block of backbone 0, averaged (a linear probe when the head is linear).
  return taps.length ? taps : [{ backbone: 0, name: names[0][names[0].length - 1], pool: 'mean' }];
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

/** Per channel, the affine map from the run's normalisation to a backbone's: x·a + b. */
function renormalisation(from: Stats, to: Stats): { a: Float32Array; b: Float32Array } {
  if (from.mean.length !== to.mean.length) throw new InputError(`tap-probe: backbones with ${from.mean.length} and ${to.mean.length} input channels cannot share the run's images`);
  return {
    a: Float32Array.from(from.std, (s, c) => s / to.std[c]),
    b: Float32Array.from(from.mean, (m, c) => (m - to.mean[c]) / to.std[c]),
  };
}

export class TapProbeModel extends MethodModel {
  readonly taps: Tap[];
  readonly featureWidth: number;
  hiddenLayer: Linear | null;
  /** Backbones 1, 2, … (frozen, eval mode); their parameters are saved with the run's weights. */
  readonly extraBackbones: ModelBackbone[];
  /** One recorder per backbone (null: none of its taps is used, so it does not run). */
  readonly #recorders: (TapRecorder | null)[];
  readonly #renormalise: { a: Float32Array; b: Float32Array }[];

  constructor(backbone: Module, numClasses: number, readonly options: TapProbeOptions) {
    // Rebuilt without weights: a loaded run reads them from its own file, a new run in calibrate().
    const extras = options.backbones.map((e) => rebuildArchitecture(e.arch, 1, e.archOptions));
    let taps: Tap[];
    try {
      if (extras.length && options.inputStats === null) throw new InputError('tap-probe: with further backbones, inputStats (the run\'s normalisation) is required');
      taps = parseTaps(options.taps, backbone, extras.map((model, i) => ({ model, spec: options.backbones[i].spec }))); // bad names fail before anything changes
    } catch (e) {
      for (const m of extras) m.dispose();
      throw e;
    }
    const widths = [backbone, ...extras].map((m) => tapWidths(m));
    super('tap-probe', backbone, numClasses);
    this.taps = taps;
    this.extraBackbones = extras;
    this.#renormalise = options.backbones.map((e) => renormalisation(options.inputStats!, e.normalize));
    this.featureWidth = taps.reduce((s, t) => s + widths[t.backbone].get(t.name)!, 0);
    this.#recorders = [this.backbone, ...extras].map((m, k) => {
      const names = new Set(taps.filter((t) => t.backbone === k).map((t) => t.name));
      return names.size ? new TapRecorder(m as unknown as ModelBackbone, names) : null;
    });
    // The trainer calls calibrate once when a run starts fresh: the further backbones' pretrained
    // weights are read then (a resumed run has them in its checkpoint, a loaded one in its weights).
    if (extras.length) this.calibrate = async () => this.loadPretrainedExtras();
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

  /** Backbone k's input from the run's images: x itself for backbone 0, renormalised for the others. */
  backboneInput(x: Tensor, k: number): Tensor {
    if (k === 0) return x;
    const { a, b } = this.#renormalise[k - 1], c = a.length;
    const shaped = (v: Float32Array) => onDevice(fromTyped(v, 'float32', [1, c, 1, 1]), x.device);
    return x.mul(shaped(a)).add(shaped(b));
  }

  /** The pooled taps, concatenated in the order of `taps`: [N, featureWidth]. */
  tapFeatures(x: Tensor): Tensor {
    const seen = this.#recorders.map((r, k) => (r === null ? null
      : r.record(() => { (k === 0 ? this.backbone : this.extraBackbones[k - 1]).features(this.backboneInput(x, k)); })));
    return cat(this.taps.map((t) => pooled(seen[t.backbone]!.get(t.name)!, t.pool)), 1);
  }

  /** Backbones 1, 2, … get the pretrained weights their specs name (their classifiers are unused). */
  loadPretrainedExtras(): void {
    this.options.backbones.forEach((e, i) => {
      const opened = openBackbone(e.spec, 1);
      try {
        if (opened.arch !== e.arch) throw new InputError(`tap-probe: backbone ${i + 1} '${e.spec}' is now ${opened.arch}; the run recorded ${e.arch}`);
        const head = `${opened.model.classifier().name}.`;
        this.extraBackbones[i].loadStateDict(new Map([...opened.model.stateDict()].filter(([k]) => !k.startsWith(head))), false);
      } finally {
        opened.model.dispose();
      }
    });
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
    if (this.extraBackbones.length) {
      throw new InputError(`ONNX export: a tap-probe model over ${1 + this.extraBackbones.length} backbones is not supported (predict and eval read it); a selection over one --backbone exports`);
    }
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
    for (const b of this.extraBackbones ?? []) b.train(false); // (absent while the base constructor runs)
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
    const stats = (v: unknown) => typeof v === 'object' && v !== null && Array.isArray((v as Stats).mean) && Array.isArray((v as Stats).std)
      && (v as Stats).mean.length === (v as Stats).std.length && (v as Stats).std.every((x) => typeof x === 'number' && x > 0);
    if (!Array.isArray(o.backbones) || !o.backbones.every((e) => typeof e?.spec === 'string' && typeof e.arch === 'string' && stats(e.normalize))) {
      throw new InputError('tap-probe: backbones must be a list of {spec, arch, normalize: {mean, std}} (what `adafilter select` records)');
    }
    if (o.inputStats !== null && !stats(o.inputStats)) throw new InputError('tap-probe: inputStats must be {mean, std}');
    return new TapProbeModel(backbone, numClasses, o);
  },
};
