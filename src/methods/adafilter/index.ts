/**
 * AdaFilter (Guo et al., AAAI 2020) and its ablations: every gated conv+BN pair of the backbone is
 * replaced by a GatedConv (frozen S, trainable F, gated BN); a gate source decides per example and
 * per filter. See docs/methods.md for what is the paper and what is reconstruction.
 */
import { Tensor } from '../../engine/tensor';
import { Module } from '../../nn/module';
import { Parameter } from '../../nn/parameter';
import { Identity } from '../../nn/basic';
import { InputError } from '../../errors';
import { describeBackbone, selectSites, GateLayers } from '../backbone';
import { Method, MethodModel, ParamRole, resolveOptions } from '../method';
import { GATE_MODES, GateMode, GateSource, RandomGate, RecurrentGate, StaticGate } from './gate';
import { noGrad } from '../../engine/autograd';
import { tidy } from '../../engine/scope';
import { GateContext, GatedConv, SkipPaths } from './gated-conv';
import { GateStatsCollector } from '../gate-stats';
import type { ForwardPass, GateRecord } from '../forward-pass';
import type { OnnxEmitter } from '../../io/onnx/export';

export interface AdaFilterOptions {
  /** 'recurrent' (AdaFilter), 'static' (per-filter logits), 'random' (no gate network). */
  gate: 'recurrent' | 'static' | 'random';
  /** Gated BN (BN_F and BN_S); false: one BN after mixing (adafilter-nogbn). */
  gatedBn: boolean;
  /** Freeze BN_S's affine parameters. */
  frozenBnAffine: boolean;
  /** Which conv+BN pairs are gated: blocks | all | last-N. */
  gateLayers: GateLayers;
  /** Gate input size d. */
  inputSize: number;
  /** LSTM hidden size H. */
  hiddenSize: number;
  /** How training passes turn logits into gates: 'st' | 'gumbel' | 'gumbel-anneal' (see GateMode). */
  gateMode: GateMode;
  /** gumbel-anneal: the fraction of the run at which the noise reaches 0 (it falls linearly from the gate's first training step). */
  annealEnd: number;
  /**
   * Temperature of the straight-through surrogate σ(z/τ): scales the gate's gradient only. No mode's
   * forward value depends on it ([σ(v/τ) > ½] = [v > 0]).
   */
  tau: number;
  /**
   * Warm start: the first `warmup` fraction of the run's steps trains with every gate forced to 1
   * (plain fine-tuning of F; the gate network is not run and does not change), so the two paths
   * differ before the gate starts learning (with F = S its gradient is exactly zero).
   */
  warmup: number;
  /** The last `gatePhase` fraction of the run trains the gate network alone (everything else frozen). */
  gatePhase: number;
  /**
   * The pretrained path stays the pretrained layer: BN_S normalises with the pretrained running
   * statistics (evaluation mode, never updated) and its affine parameters are frozen, so S's path is
   * exactly the pretrained conv+BN and differs from F's from the first step.
   */
  pretrainedS: boolean;
  /** Starting fraction of fine-tuned filters (bias of Q_l, or of the static logits). */
  initFraction: number;
  /** No gradient from the gate network into the backbone activations it reads. */
  detachGateInput: boolean;
  /** Weight lambda of the budget term lambda·(mean(g) − rho)² (0: off). */
  budget: number;
  /** Target fraction rho of the budget term. */
  budgetTarget: number;
  /** random-filter: probability of choosing F, one number or one per gated layer. */
  randomFraction: number | number[];
  /** Leave out a path no gate chose: 'exact' (only when that changes no value or gradient), 'always', 'never'. */
  skipPaths: SkipPaths;
  /**
   * Compute both paths with one convolution (2C outputs) and one BN call; false (default): two of
   * each. Same values; the separate paths are faster in training (S's weight gradient is not computed
   * and the mixing's backward needs no slicing of a 2C gradient) and no slower in evaluation.
   */
  fusedPaths: boolean;
  /** Force every gate to 0 (pretrained) or 1 (fine-tuned); null: gates decide. */
  forceGates: 0 | 1 | null;
}

/**
 * gateMode 'st' and warmup 0.3 (with lr 0.03 and gate lr 30, the trainer's default ratio for this
 * method): the best of 12 trials on the benchmark's dev task by validation accuracy (bench transfer
 * --profile fidelity-search; docs/results.md), against gumbel, gumbel-anneal, no warm start,
 * pretrainedS and gate lrs from 0.1 to 30.
 */
export const adafilterDefaults: AdaFilterOptions = {
  gate: 'recurrent', gatedBn: true, frozenBnAffine: false, gateLayers: 'blocks',
  inputSize: 64, hiddenSize: 128, gateMode: 'st', annealEnd: 0.75, tau: 1, warmup: 0.3, gatePhase: 0, pretrainedS: false,
  initFraction: 0.5, detachGateInput: false,
  budget: 0, budgetTarget: 0.5, randomFraction: 0.5, skipPaths: 'exact', fusedPaths: false, forceGates: null,
};

export class AdaFilterModel extends MethodModel {
  gate: GateSource;
  /** The gated layers in forward order (a private field: they already live in the backbone). */
  readonly #gated: GatedConv[];
  readonly gatedNames: string[];
  readonly #ctx: GateContext;
  readonly #frozen: Set<Parameter>;
  #gatePhase = false;

  constructor(method: string, backbone: Module, numClasses: number, readonly options: AdaFilterOptions) {
    super(method, backbone, numClasses);
    const o = options;
    if (!(o.initFraction > 0 && o.initFraction < 1)) throw new InputError(`${method}: initFraction must be in (0, 1), got ${o.initFraction}`);
    if (!(o.tau > 0)) throw new InputError(`${method}: tau must be > 0, got ${o.tau}`);
    if (!GATE_MODES.includes(o.gateMode)) throw new InputError(`${method}: gateMode must be one of ${GATE_MODES.join(', ')}, got ${JSON.stringify(o.gateMode)}`);
    const fraction = (v: number, name: string, max: number) => {
      if (!(typeof v === 'number' && v >= 0 && v <= max)) throw new InputError(`${method}: ${name} must be a fraction of the run in [0, ${max}], got ${v}`);
    };
    fraction(o.warmup, 'warmup', 0.95); fraction(o.gatePhase, 'gatePhase', 0.95);
    if (o.warmup + o.gatePhase > 0.95) throw new InputError(`${method}: warmup + gatePhase must leave part of the run for joint training (got ${o.warmup} + ${o.gatePhase})`);
    if (!(o.annealEnd > 0 && o.annealEnd <= 1)) throw new InputError(`${method}: annealEnd must be in (0, 1], got ${o.annealEnd}`);
    const sites = selectSites(describeBackbone(this.backbone), o.gateLayers);
    const shapes = sites.map((s) => ({ inChannels: s.conv.inChannels, outChannels: s.conv.outChannels }));
    this.gate = o.gate === 'recurrent'
      ? new RecurrentGate(shapes, { inputSize: o.inputSize, hiddenSize: o.hiddenSize, tau: o.tau, initFraction: o.initFraction, detachInput: o.detachGateInput })
      : o.gate === 'static'
        ? new StaticGate(shapes, { tau: o.tau, initFraction: o.initFraction })
        : new RandomGate(shapes, o.randomFraction);
    this.#ctx = new GateContext();
    this.#ctx.force = o.forceGates;
    this.#ctx.skip = o.skipPaths;
    this.gatedNames = sites.map((s) => s.name);
    this.#gated = sites.map((s, i) => {
      const g = new GatedConv(i, s.conv, s.bn, this.#ctx, { singleBn: !o.gatedBn, frozenBnAffine: o.frozenBnAffine || o.pretrainedS, pretrainedS: o.pretrainedS, fused: o.fusedPaths });
      s.replace(g, new Identity());
      return g;
    });
    this.#frozen = new Set<Parameter>();
    for (const g of this.gated) {
      this.#frozen.add(g.weight_s);
      if (g.bias_s) this.#frozen.add(g.bias_s);
      if ((o.frozenBnAffine || o.pretrainedS) && g.norm.bn_s) {
        if (g.norm.bn_s.weight) this.#frozen.add(g.norm.bn_s.weight);
        if (g.norm.bn_s.bias) this.#frozen.add(g.norm.bn_s.bias);
      }
    }
    this.applyTrainability();
    this.#setNoise(o.gateMode === 'st' ? 0 : 1);
  }

  #setNoise(scale: number): void {
    if (this.gate instanceof RecurrentGate || this.gate instanceof StaticGate) this.gate.noiseScale = scale;
  }

  /**
   * The phase of training step `step` of `total` (0-based): warm start (gates forced to 1 in training
   * passes), joint training, the gate's own last phase; and gumbel-anneal's noise scale. A function
   * of the position only, so a resumed run is in the same phase.
   */
  override atStep(step: number, total: number): void {
    const o = this.options;
    const warm = Math.round(o.warmup * total);
    const gateOnly = total - Math.round(o.gatePhase * total);
    this.#ctx.trainForce = step < warm ? 1 : null;
    const inGatePhase = step >= gateOnly;
    if (inGatePhase !== this.#gatePhase) {
      this.#gatePhase = inGatePhase;
      const gateParams = new Set(this.gate.parameters());
      for (const [p] of this.trainableParameters()) p.requiresGrad_(!inGatePhase || gateParams.has(p));
    }
    if (o.gateMode === 'gumbel-anneal') {
      // Linear from 1 at the gate's first training step to 0 at annealEnd of the run; the step's
      // progress counts the step itself, so with annealEnd 1 the last step is noise-free.
      const end = Math.max(warm + 1, o.annealEnd * total);
      this.#setNoise(Math.min(1, Math.max(0, 1 - (step + 1 - warm) / (end - warm))));
    }
  }

  /** ‖F − S‖ / ‖S‖ per gated layer (how far the fine-tuned filters moved), and over all of them. */
  override weightDrift(): { overall: number; layers: Record<string, number> } {
    return noGrad(() => tidy(() => {
      let num = 0, den = 0;
      const layers: Record<string, number> = {};
      this.gated.forEach((g, i) => {
        const d = g.weight_f.sub(g.weight_s).square().sum().item();
        const s = g.weight_s.square().sum().item();
        num += d; den += s;
        layers[this.gatedNames[i]] = Math.sqrt(d / s);
      });
      return { overall: Math.sqrt(num / den), layers };
    }));
  }

  get gated(): GatedConv[] {
    return this.#gated;
  }

  /** The evaluation forward in ONNX: the backbone's, each gated layer taking its gates from this graph's gate network. */
  override toOnnx(e: OnnxEmitter, x: string): string {
    const force = this.options.forceGates;
    const gates = force === null ? this.gate.onnxGates() : null;
    if (force === null && !gates) throw new InputError(`ONNX export: ${this.method} draws random gates at evaluation; a fixed graph cannot reproduce it`);
    return e.emitWith(this.backbone, x, (m, y, n) => (m instanceof GatedConv ? m.toOnnxGated(e, y, n, gates ? gates(e, m.index, y) : null, force) : null));
  }

  trainableParameters(): [Parameter, ParamRole][] {
    const head = new Set(this.head.parameters());
    const out: [Parameter, ParamRole][] = [];
    for (const p of this.backbone.parameters()) {
      if (!this.#frozen.has(p)) out.push([p, head.has(p) ? 'head' : 'backbone']);
    }
    for (const p of this.gate.parameters()) out.push([p, 'gate']);
    return out;
  }

  protected override noDecayParameters(): Set<Parameter> {
    const s = super.noDecayParameters();
    for (const p of this.gate.biasParameters()) s.add(p);
    return s;
  }

  /** Forces every gate to 0 (pretrained network) or 1 (fine-tuned network); null lets the gates decide. */
  forceGates(v: 0 | 1 | null): void {
    this.#ctx.force = v;
  }

  /** The gate source's pass runs beside the backbone's; each gated layer appends its gates to `gates`. */
  protected override passFeatures(x: Tensor, gates: GateRecord[]): Tensor {
    const ctx = this.#ctx;
    ctx.pass = { gates: this.gate.start(x.size(0)), records: gates };
    try {
      return super.features(x);
    } finally {
      ctx.pass = null;
    }
  }

  override features(x: Tensor): Tensor {
    return this.passFeatures(x, []);
  }

  /** Budget term lambda·(mean(g) − rho)² over a pass's gates (training only). */
  override extraLoss(pass: ForwardPass): Tensor | null {
    if (!(this.options.budget > 0) || !this.training || pass.gates.length === 0) return null;
    let sum: Tensor | null = null;
    let n = 0;
    for (const { g } of pass.gates) {
      const s = g.sum();
      sum = sum ? sum.add(s) : s;
      n += g.numel;
    }
    return sum!.div(n).sub(this.options.budgetTarget).square().mul(this.options.budget);
  }

  /** Per gated layer: fraction of filters choosing F, overall, per class and across examples. */
  override collectStats(): GateStatsCollector {
    return new GateStatsCollector(this.gatedNames, this.gated.map((g) => g.outChannels));
  }
}

function variant(name: string, description: string, fixed: Partial<AdaFilterOptions>): Method<AdaFilterOptions> {
  const defaults = { ...adafilterDefaults, ...fixed };
  return {
    // fidelity-search chose gate lr 30 at lr 0.03 (gate lrs 0.1 to 30 tried): the gate's logits barely
    // move at the backbone's lr (|z| ≈ 0.025 after 24 epochs at gate lr 0.1).
    name, description, defaults, gated: true, gateLrFactor: 1000,
    apply(backbone, numClasses, options) {
      return new AdaFilterModel(name, backbone, numClasses, resolveOptions(name, defaults, options));
    },
  };
}

export const adafilter = variant('adafilter',
  'per-example per-filter choice between frozen and fine-tuned filters by a recurrent gate, gated BN', {});
export const adafilterNoGbn = variant('adafilter-nogbn', 'AdaFilter with one BN after mixing (ablation)', { gatedBn: false });
export const randomFilter = variant('random-filter',
  'per-example random filter choice at a fixed fraction, no gate network (ablation)', { gate: 'random' });
export const adafilterStatic = variant('adafilter-static',
  'per-filter learned gates that do not depend on the example (ablation)', { gate: 'static' });

export { GatedConv, GateContext } from './gated-conv';
export { GatedBatchNorm } from './gated-bn';
export { RecurrentGate, StaticGate, RandomGate, gumbelSigmoidST, hardGate, GATE_MODES } from './gate';
export type { GateMode } from './gate';
export { GateStatsCollector } from '../gate-stats';
export type { GateStats, LayerGateStats } from '../gate-stats';
