/**
 * SpotTune (Guo et al., CVPR 2019): per example and per block (BasicBlock, Bottleneck, MobileNetV2 InvertedResidual), a policy network looking at
 * the input image chooses between a frozen copy of the pretrained block and a fine-tuned one.
 * Policy: a small ResNet (one BasicBlock per stage, widths 16/32/64) from scratch with 2 logits per
 * block; straight-through Gumbel-softmax (tau 5) in training, argmax in evaluation.
 */
import { Tensor, aten } from '../engine/tensor';
import { noGrad } from '../engine/autograd';
import { newFull } from '../engine/creation';
import { atLeastFloat32 } from '../engine/precision';
import { deviceType } from '../engine/device';
import { gumbel, perExample } from '../engine/random';
import { Module } from '../nn/module';
import { Parameter } from '../nn/parameter';
import { Conv2d } from '../nn/conv';
import { softmax } from '../nn/functional';
import { ResNet } from '../models/resnet';
import { isCloneableBlock } from '../models/backbone';
import { InputError } from '../errors';
import { describeBackbone } from './backbone';
import { GateStatsCollector } from './gate-stats';
import type { GateRecord } from './forward-pass';
import { Method, MethodModel, ParamRole, resolveOptions } from './method';
import type { OnnxEmitter } from '../io/onnx/export';
import { int } from '../io/onnx/graph';
import { DataType } from '../io/onnx/onnx-model';

export interface SpotTuneOptions {
  /** Gumbel-softmax temperature. */
  tau: number;
  /** Policy network widths (one BasicBlock per stage). */
  policyWidths: number[];
  /** Force every block to the frozen (0) or fine-tuned (1) copy; null: the policy decides. */
  forcePolicy: 0 | 1 | null;
}

export const spottuneDefaults: SpotTuneOptions = { tau: 5, policyWidths: [16, 32, 64], forcePolicy: null };

/** What the blocks of one model share: the forced choice, and during a pass only, that pass. */
class PolicyState {
  force: 0 | 1 | null = null;
  /**
   * The current pass: the policy's [B, blocks] choice of the fine-tuned copy (0/1, straight-through
   * gradient in training; null when forced) and where its blocks append what they chose; null between passes.
   */
  pass: { choice: Tensor | null; records: GateRecord[] } | null = null;
}

/** Straight-through Gumbel-softmax over the last dimension; returns the one-hot sample. */
export function gumbelSoftmaxST(logits: Tensor, tau: number): Tensor {
  // The choice is taken in fp32: under autocast the policy's logits are bf16 / fp16.
  const z = atLeastFloat32(logits);
  // The noise is per example (perExample): a data-parallel rank gets its rows of the global batch's.
  const noise = noGrad(() => perExample(z.shape, 0, (s) => gumbel(s, { dtype: z.dtype, device: z.device })));
  const y = softmax(z.add(noise).div(tau), -1);
  const hard = noGrad(() => aten('aten::one_hot', '', [y.argmax(-1), logits.size(-1)]).to(y.dtype));
  return hard.add(y.sub(y.detach()));
}

/** The block's own copy (same class, layer settings and weights): each family knows its blocks. */
function copyBlock(b: Module): Module {
  if (!isCloneableBlock(b)) throw new InputError(`spottune: cannot copy a block of type ${b.constructor?.name ?? 'unknown'}`);
  return b.clone();
}

/** One block with its frozen and fine-tuned copies, mixed per example. */
export class SpotTuneBlock extends Module {
  frozen: Module;
  tuned: Module;
  readonly #state: PolicyState;

  constructor(readonly index: number, block: Module, state: PolicyState) {
    super();
    this.tuned = block;
    this.frozen = copyBlock(block);
    this.#state = state;
  }

  forward(x: Tensor): Tensor {
    const st = this.#state;
    const b = x.size(0);
    const choice = st.pass?.choice;
    if (st.force === null && !choice) throw new Error('spottune: a block ran outside its model\'s forward pass');
    const g = st.force !== null ? newFull(x, [b], st.force) : choice!.select(1, this.index);
    st.pass?.records.push({ layer: this.index, g, z: null });
    // A forced choice is known without reading it back; a sampled one is read back only on the CPU,
    // where that is free (on a GPU it would stall every block; both copies and lerp give the same values).
    if (st.force !== null) return st.force === 1 ? this.tuned.forward(x) : this.frozen.forward(x);
    if (!g.requiresGrad && deviceType(x.device) === 'cpu') {
      const ones = noGrad(() => g.sum().item());
      if (ones === b) return this.tuned.forward(x);
      if (ones === 0) return this.frozen.forward(x);
    }
    const frozen = this.frozen.forward(x), tuned = this.tuned.forward(x);
    // lerp wants one dtype; the 0/1 choice is exact in the blocks' (bf16 under autocast).
    const g4 = g.view(b, 1, 1, 1);
    return aten('aten::lerp', 'Tensor', [frozen, tuned, g4.dtype === frozen.dtype ? g4 : g4.to(frozen.dtype)]);
  }

  /**
   * This block in evaluation in an ONNX graph, given the policy's [N, blocks] int64 choice (null:
   * every block forced to `force`): one copy per example (lerp with 0/1 is Where).
   */
  toOnnxChosen(e: OnnxEmitter, x: string, n: string, choice: string | null, force: 0 | 1 | null): string {
    if (force === 1) return e.emit(this.tuned, x);
    if (force === 0) return e.emit(this.frozen, x);
    const g = e.g;
    const pick = g.one('Gather', [choice!, g.ints(`block_${this.index}`, [this.index], [])], `${n}/choice`, { axis: int(1) });
    const cond = g.one('Reshape', [g.one('Cast', [pick], `${n}/choice_bool`, { to: int(DataType.BOOL) }), g.ints('shape_choice', [-1, 1, 1, 1])], `${n}/cond`);
    // Both copies in call order as our forward runs them (frozen first), though neither has state.
    const frozen = e.emit(this.frozen, x);
    const tuned = e.emit(this.tuned, x);
    return g.one('Where', [cond, tuned, frozen], `${n}/mix`);
  }
}

export class SpotTuneModel extends MethodModel {
  policy: ResNet;
  readonly #blocks: SpotTuneBlock[];
  readonly #state = new PolicyState();

  constructor(backbone: Module, numClasses: number, readonly options: SpotTuneOptions) {
    super('spottune', backbone, numClasses);
    const sites = describeBackbone(this.backbone).blocks;
    this.#blocks = sites.map((s, i) => {
      const w = new SpotTuneBlock(i, s.block, this.#state);
      s.replace(w);
      return w;
    });
    const ws = options.policyWidths;
    this.policy = new ResNet({ blocks: ws.map(() => 1), widths: ws, stem: 'cifar', numClasses: 2 * sites.length });
    this.#state.force = options.forcePolicy;
    this.applyTrainability();
  }

  get blocks(): SpotTuneBlock[] {
    return this.#blocks;
  }

  /** Per block: fraction of examples using the fine-tuned copy, overall, per class, and its spread. */
  override collectStats(): GateStatsCollector {
    return new GateStatsCollector(describeBlocksNames(this), this.#blocks.map(() => 1));
  }

  /** The evaluation forward in ONNX: the policy's argmax choice, then the backbone with each block choosing its copy. */
  override toOnnx(e: OnnxEmitter, x: string): string {
    const force = this.options.forcePolicy;
    let choice: string | null = null;
    if (force === null) {
      const logits = e.emit(this.policy, x);
      const r = e.g.one('Reshape', [logits, e.g.ints('shape_policy', [0, this.blocks.length, 2])], 'policy/logits');
      choice = e.g.one('ArgMax', [r], 'policy/choice', { axis: int(2), keepdims: int(0), select_last_index: int(0) });
    }
    return e.emitWith(this.backbone, x, (m, y, n) => (m instanceof SpotTuneBlock ? m.toOnnxChosen(e, y, n, choice, force) : null));
  }

  forcePolicy(v: 0 | 1 | null): void {
    this.#state.force = v;
  }

  trainableParameters(): [Parameter, ParamRole][] {
    const frozen = new Set<Parameter>();
    for (const b of this.#blocks) {
      for (const m of b.frozen.modules()) if (m instanceof Conv2d) frozen.add(m.weight);
    }
    const head = new Set(this.head.parameters());
    const out: [Parameter, ParamRole][] = this.backbone.parameters()
      .filter((p) => !frozen.has(p)).map((p) => [p, head.has(p) ? 'head' : 'backbone']);
    for (const p of this.policy.parameters()) out.push([p, 'gate']);
    return out;
  }

  protected override noDecayParameters(): Set<Parameter> {
    const s = super.noDecayParameters();
    s.add(this.policy.fc.bias!);
    return s;
  }

  protected override passFeatures(x: Tensor, gates: GateRecord[]): Tensor {
    const st = this.#state;
    let choice: Tensor | null = null;
    if (st.force === null) {
      const logits = this.policy.forward(x).view(x.size(0), this.#blocks.length, 2);
      choice = this.training
        ? gumbelSoftmaxST(logits, this.options.tau).select(2, 1)
        : noGrad(() => logits.argmax(2).to(x.dtype));
    }
    st.pass = { choice, records: gates };
    try {
      return super.features(x);
    } finally {
      st.pass = null;
    }
  }

  override features(x: Tensor): Tensor {
    return this.passFeatures(x, []);
  }
}

function describeBlocksNames(m: SpotTuneModel): string[] {
  const names = new Map(m.backbone.namedModules().map(([n, mod]) => [mod, n] as [Module, string]));
  return m.blocks.map((b) => names.get(b) ?? `block${b.index}`);
}

export const spottune: Method<SpotTuneOptions> = {
  name: 'spottune',
  description: 'per-example per-block choice between frozen and fine-tuned block copies; policy = small ResNet on the image',
  defaults: spottuneDefaults,
  gated: true,
  // The full profile's validation search chose gate lr 0.1 at lr 0.01.
  gateLrFactor: 10,
  apply(backbone, numClasses, options) {
    return new SpotTuneModel(backbone, numClasses, resolveOptions('spottune', spottuneDefaults, options));
  },
};

