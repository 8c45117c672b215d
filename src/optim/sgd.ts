import { tidy, keep } from '../engine/scope';
import { noGrad } from '../engine/autograd';
import { Tensor } from '../engine/tensor';
import { Parameter } from '../nn/parameter';
import { Optimizer, ParamGroupInput } from './optimizer';

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** torch.optim.SGD, same update rule: weight decay added to the gradient, then momentum. */
export class SGD extends Optimizer {
  constructor(params: Parameter[] | ParamGroupInput[], o: SGDOptions) {
    super(params, { lr: o.lr, weightDecay: o.weightDecay ?? 0, momentum: o.momentum ?? 0, dampening: o.dampening ?? 0, nesterov: o.nesterov ?? false });
    if (this.groups.some((g) => g.nesterov && (!(g.momentum as number) || g.dampening))) {
      throw new Error('SGD: nesterov needs momentum > 0 and dampening 0');
    }
  }

  step(): void {
    noGrad(() => tidy(() => {
      for (const g of this.groups) {
        const momentum = g.momentum as number, dampening = g.dampening as number;
        for (const p of g.params) {
          const grad = p.grad;
          if (grad === null) continue;
          let d: Tensor = g.weightDecay ? grad.add(p, g.weightDecay) : grad;
          if (momentum) {
            const s = this.state.get(p);
            let buf = s?.momentum_buffer as Tensor | undefined;
            if (!buf) {
              buf = keep(d.clone());
              this.state.set(p, { momentum_buffer: buf });
            } else {
              buf.mul_(momentum).add_(d, 1 - dampening);
            }
            d = g.nesterov ? d.add(buf, momentum) : buf;
          }
          p.add_(d, -g.lr);
        }
      }
    }));
  }
}
