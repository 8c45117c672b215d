import { tidy, keep } from '../engine/scope';
import { noGrad } from '../engine/autograd';
import { atenVoid, Tensor } from '../engine/tensor';
import { zerosLike } from '../engine/creation';
import { Parameter } from '../nn/parameter';
import { Optimizer, ParamGroupInput } from './optimizer';

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** torch.optim.AdamW (decoupled weight decay), the same arithmetic in the same order. */
export class AdamW extends Optimizer {
  constructor(params: Parameter[] | ParamGroupInput[], o: AdamWOptions = {}) {
    super(params, { lr: o.lr ?? 1e-3, weightDecay: o.weightDecay ?? 1e-2, betas: o.betas ?? [0.9, 0.999], eps: o.eps ?? 1e-8 });
  }

  step(): void {
    noGrad(() => tidy(() => {
      for (const g of this.groups) {
        const [b1, b2] = g.betas as [number, number];
        for (const p of g.params) {
          const grad = p.grad;
          if (grad === null) continue;
          let s = this.state.get(p);
          if (!s) {
            s = { step: 0, exp_avg: keep(zerosLike(p)), exp_avg_sq: keep(zerosLike(p)) };
            this.state.set(p, s);
          }
          const step = (s.step as number) + 1;
          s.step = step;
          const m = s.exp_avg as Tensor, v = s.exp_avg_sq as Tensor;
          p.mul_(1 - g.lr * g.weightDecay);
          atenVoid('aten::lerp_', 'Scalar', [m, grad, 1 - b1]);
          v.mul_(b2).addcmul_(grad, grad, 1 - b2);
          const bc1 = 1 - b1 ** step;
          const bc2Sqrt = Math.sqrt(1 - b2 ** step);
          const denom = v.sqrt().div_(bc2Sqrt).add_(g.eps as number);
          p.addcdiv_(m, denom, -g.lr / bc1);
        }
      }
    }));
  }
}
