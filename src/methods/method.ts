import { Tensor } from '../engine/tensor';
import { Module } from '../nn/module';
import { Parameter } from '../nn/parameter';
import { BatchNorm2d } from '../nn/batchnorm';
import { Linear } from '../nn/linear';
import { crossEntropy } from '../nn/functional';
import type { ParamGroupInput } from '../optim/optimizer';
import type { Batch } from '../data/loader';
import { InputError } from '../errors';
import { describeBackbone } from './backbone';
import type { Backbone } from '../models/backbone';
import type { OnnxEmitter } from '../io/onnx/export';
import type { ForwardPass, GateRecord } from './forward-pass';

/** Learning rates and weight decay a method turns into optimiser parameter groups. */
export interface OptimSettings {
  /** Backbone learning rate (and the head's unless headLr is given). */
  lr: number;
  /** Head learning rate; default lr. */
  headLr?: number;
  /** Gate-network learning rate (AdaFilter, SpotTune policy); default lr. */
  gateLr?: number;
  /** Weight decay on conv / linear weights and the head (never on BN parameters or gate biases). Default 5e-4. */
  weightDecay?: number;
}

/** What a parameter is, for the optimiser: its group decides lr and weight decay. */
export type ParamRole = 'backbone' | 'head' | 'gate';

/**
 * Collects statistics while a method model is evaluated: update() with each evaluation pass
 * (MethodModel.run, in eval mode) and that batch's labels, while the pass's tensors are alive; result() at the end.
 */
export interface StatsCollector {
  update(pass: ForwardPass, labels: ArrayLike<number> | Tensor): void;
  result(): object;
}

export interface LossOptions {
  labelSmoothing?: number;
}

export interface ParameterCounts {
  /** Every parameter of the adapted model (frozen ones included). */
  total: number;
  /** Parameters the optimiser updates. */
  trainable: number;
  /** Parameters kept at their pretrained values. */
  frozen: number;
}

/**
 * A backbone adapted by a method: run(x) is a forward pass and returns what it produced (logits,
 * features, gates: ForwardPass); forward(x) gives its logits. The method decides which parameters
 * train (paramGroups), what the loss adds (extraLoss, from a pass) and what is recorded at
 * evaluation (collectStats, from passes).
 *
 * The backbone is taken over and modified in place (its classifier replaced by the new head, gated
 * layers swapped in); build a fresh one if the original is still needed.
 */
export abstract class MethodModel extends Module {
  readonly backbone: Backbone;
  readonly #head: Linear;
  readonly #headKey: string;
  /** The module applied to the features: the head, or the container holding it. */
  readonly #headPath: Module;

  constructor(readonly method: string, backbone: Module, readonly numClasses: number) {
    super();
    const info = describeBackbone(backbone);
    this.backbone = info.model;
    this.#headKey = info.headKey;
    // The new classifier takes the place of the old one (backbone.resetClassifier), so the adapted
    // model keeps the backbone's parameter names (a fine-tuned ResNet stays loadable as a ResNet).
    info.resetClassifier(numClasses);
    this.#head = info.classifier();
    // A classifier inside a container (MobileNetV2's classifier = [dropout, linear]) is reached
    // through that container, so what comes before the Linear (dropout) still applies.
    const dot = info.headKey.lastIndexOf('.');
    const container = dot < 0 ? undefined
      : this.backbone.namedModules().find(([n]) => n === info.headKey.slice(0, dot))?.[1];
    this.#headPath = container ?? this.#head;
  }

  /** The new classifier (it lives in the backbone under its original name: fc, classifier.1). */
  get head(): Linear {
    return this.#head;
  }

  get headKey(): string {
    return this.#headKey;
  }

  /** Pooled features [N, D]; methods that wrap layers set up their per-pass state around this. */
  features(x: Tensor): Tensor {
    return this.backbone.features(x);
  }

  /**
   * The features of one pass, with the gates a gated method's layers chose appended to `gates` (in
   * call order). Gated methods override this; the others compute features().
   */
  protected passFeatures(x: Tensor, _gates: GateRecord[]): Tensor {
    return this.features(x);
  }

  /** The head on the pooled features. */
  protected classify(features: Tensor): Tensor {
    return this.#headPath.forward(features);
  }

  /** One forward pass: the logits and what the method's loss and statistics read from it. */
  run(x: Tensor): ForwardPass {
    const gates: GateRecord[] = [];
    const features = this.passFeatures(x, gates);
    return { logits: this.classify(features), features, gates };
  }

  forward(x: Tensor): Tensor {
    return this.run(x).logits;
  }

  /** The role of each trainable parameter; parameters not listed are frozen. */
  abstract trainableParameters(): [Parameter, ParamRole][];

  /**
   * Optimiser parameter groups: backbone, head and gate parameters in separate groups, each split
   * into decayed (conv / linear weights) and not decayed (BN parameters, biases of gates). Empty
   * groups are left out. Each group carries a `name`.
   */
  paramGroups(o: OptimSettings): ParamGroupInput[] {
    const wd = o.weightDecay ?? 5e-4;
    const noDecay = this.noDecayParameters();
    const lrs: Record<ParamRole, number> = { backbone: o.lr, head: o.headLr ?? o.lr, gate: o.gateLr ?? o.lr };
    const groups: ParamGroupInput[] = [];
    for (const role of ['backbone', 'head', 'gate'] as ParamRole[]) {
      const ps = this.trainableParameters().filter(([, r]) => r === role).map(([p]) => p);
      const decayed = ps.filter((p) => !noDecay.has(p));
      const plain = ps.filter((p) => noDecay.has(p));
      const decay = this.weightDecayFor(role, wd);
      if (decayed.length) groups.push({ name: role, params: decayed, lr: lrs[role], weightDecay: decay });
      if (plain.length) groups.push({ name: `${role}_no_decay`, params: plain, lr: lrs[role], weightDecay: 0 });
    }
    return groups;
  }

  /** Weight decay for a role's decayed parameters (L2-SP replaces it by its own penalty). */
  protected weightDecayFor(_role: ParamRole, wd: number): number {
    return wd;
  }

  /** BN parameters and gate biases: no weight decay. */
  protected noDecayParameters(): Set<Parameter> {
    const out = new Set<Parameter>();
    for (const m of this.modules()) {
      if (m instanceof BatchNorm2d) {
        if (m.weight) out.add(m.weight);
        if (m.bias) out.add(m.bias);
      }
    }
    return out;
  }

  /** The method's extra loss term for a pass (L2-SP, BSS, gate budget), or null. */
  extraLoss(_pass: ForwardPass): Tensor | null {
    return null;
  }

  /** Cross-entropy of the pass's logits (optional label smoothing) plus extraLoss(pass). */
  loss(pass: ForwardPass, target: Tensor, o: LossOptions = {}): Tensor {
    const ce = crossEntropy(pass.logits, target, { labelSmoothing: o.labelSmoothing ?? 0 });
    const extra = this.extraLoss(pass);
    return extra ? ce.add(extra) : ce;
  }

  /** A collector for evaluation statistics (gate fractions), or null when the method has none. */
  collectStats(): StatsCollector | null {
    return null;
  }

  /**
   * Called by the trainer before training step `step` (0-based) of `total`: methods whose training
   * changes over the run (AdaFilter's warm start, gate phase, noise annealing) set themselves up
   * from the position alone, so a resumed run continues in the same phase.
   */
  atStep(_step: number, _total: number): void {}

  /**
   * Methods that must see training images before the first step (gna's filter grouping) implement
   * this. The trainer calls it once, when a run starts fresh; its result must live in the model's
   * state dict, which the checkpoint restores on resume.
   */
  calibrate?(batches: AsyncIterable<Batch>): Promise<void>;

  /** ‖F − S‖ / ‖S‖ of methods that keep a fine-tuned copy beside frozen filters; null for the rest. */
  weightDrift(): { overall: number; layers: Record<string, number> } | null {
    return null;
  }

  /**
   * The evaluation forward in an ONNX graph (io/onnx/export.ts asks each module). A method whose
   * evaluation is its backbone's forward with the new head (the registry's evaluatesAsBackbone)
   * writes the backbone; AdaFilter and SpotTune override this; any other method is refused.
   */
  toOnnx(e: OnnxEmitter, x: string): string {
    // The registry imports every method, and so this file: it is read when called, not at load.
    const { getMethod } = require('./registry') as typeof import('./registry');
    if (!getMethod(this.method).evaluatesAsBackbone) throw new InputError(`ONNX export: method '${this.method}' (${this.constructor.name}) is not supported`);
    return e.emit(this.backbone, x);
  }

  parameterCounts(): ParameterCounts {
    const trainable = new Set(this.trainableParameters().map(([p]) => p));
    let total = 0, t = 0;
    for (const p of this.parameters()) {
      total += p.numel;
      if (trainable.has(p)) t += p.numel;
    }
    return { total, trainable: t, frozen: total - t };
  }

  /**
   * Sets requiresGrad on every parameter from trainableParameters(): true for those listed, false
   * for the rest. Subclasses call it at the end of their constructor.
   */
  protected applyTrainability(): void {
    const trainable = new Set(this.trainableParameters().map(([p]) => p));
    for (const p of this.parameters()) p.requiresGrad_(trainable.has(p));
  }
}

/** Construction options every method accepts. */
export interface MethodOptions {
  [key: string]: unknown;
}

/** A fine-tuning strategy: turns a (pretrained) backbone into a MethodModel for `numClasses` classes. */
export interface Method<O extends object = Record<string, unknown>> {
  readonly name: string;
  readonly description: string;
  /** Every option with its default value (each one a flag). */
  readonly defaults: Readonly<O>;
  /**
   * A gate or policy network chooses per example between frozen and fine-tuned parts: its BN
   * statistics are recalibrated under the evaluation gates by default (see train/precise-bn.ts).
   */
  readonly gated?: boolean;
  /**
   * The gate network's lr as a multiple of the backbone lr when none is given (the ratio the
   * method's validation search chose; 1 when absent).
   */
  readonly gateLrFactor?: number;
  /**
   * In evaluation the adapted model computes exactly the backbone's own forward pass (with the new
   * head): its weights are a plain backbone (ONNX export, `models export --format safetensors`).
   */
  readonly evaluatesAsBackbone?: boolean;
  apply(backbone: Module, numClasses: number, options?: Partial<O>): MethodModel;
}

/** Backbone and head parameters of a plain (ungated) adapted model, by role. */
export function backboneAndHead(m: MethodModel): [Parameter, ParamRole][] {
  const head = new Set(m.head.parameters());
  return m.backbone.parameters().map((p): [Parameter, ParamRole] => [p, head.has(p) ? 'head' : 'backbone']);
}

/** Fills defaults and rejects unknown option names (a typo must not silently use a default). */
export function resolveOptions<O extends object>(method: string, defaults: O, given: Partial<O> = {}): O {
  for (const k of Object.keys(given)) {
    if (!(k in defaults)) throw new InputError(`method ${method}: unknown option '${k}' (known: ${Object.keys(defaults).join(', ')})`);
  }
  const out = { ...defaults } as O;
  for (const [k, v] of Object.entries(given)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
