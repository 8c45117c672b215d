import { Tensor } from '../engine/tensor';
import { Parameter } from '../nn/parameter';

/** A set of parameters sharing hyper-parameters (lr, weight decay, …), as in torch.optim. */
export interface ParamGroup {
  params: Parameter[];
  lr: number;
  weightDecay: number;
  [hyper: string]: unknown;
}

export type ParamGroupInput = { params: Parameter[] } & Partial<Omit<ParamGroup, 'params'>>;

export abstract class Optimizer {
  readonly groups: ParamGroup[];
  /** Per-parameter state (momentum buffers, moments), kept outside every tidy scope. */
  protected readonly state = new Map<Parameter, Record<string, Tensor | number>>();

  constructor(params: Parameter[] | ParamGroupInput[], defaults: Omit<ParamGroup, 'params'>) {
    const inputs: ParamGroupInput[] = params.length > 0 && params[0] instanceof Parameter
      ? [{ params: params as Parameter[] }]
      : (params as ParamGroupInput[]);
    const seen = new Set<Parameter>();
    this.groups = inputs.map((g) => {
      for (const p of g.params) {
        if (seen.has(p)) throw new Error('optimizer: a parameter appears in more than one group');
        seen.add(p);
      }
      return { ...defaults, ...g } as ParamGroup;
    });
  }

  /** Frees every gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const g of this.groups) for (const p of g.params) p.grad = null;
  }

  abstract step(): void;

  /** Frees the optimizer's state tensors now (momentum buffers, moments) rather than at GC. */
  dispose(): void {
    for (const s of this.state.values()) for (const v of Object.values(s)) if (typeof v === 'object') v.dispose();
    this.state.clear();
  }

  /** Hyper-parameters per group and state per parameter (by position), for checkpoints. */
  stateDict(): { groups: Record<string, unknown>[]; state: Record<string, Tensor | number>[] } {
    const all = this.groups.flatMap((g) => g.params);
    return {
      groups: this.groups.map(({ params, ...hyper }) => ({ ...hyper })),
      state: all.map((p) => this.state.get(p) ?? {}),
    };
  }

  loadStateDict(sd: { groups: Record<string, unknown>[]; state: Record<string, Tensor | number>[] }): void {
    const all = this.groups.flatMap((g) => g.params);
    if (sd.groups.length !== this.groups.length || sd.state.length !== all.length) {
      throw new Error(`optimizer state has ${sd.groups.length} groups / ${sd.state.length} parameters, expected ${this.groups.length} / ${all.length}`);
    }
    sd.groups.forEach((h, i) => Object.assign(this.groups[i], h));
    all.forEach((p, i) => {
      const s = sd.state[i];
      if (Object.keys(s).length) this.state.set(p, s);
    });
  }
}
