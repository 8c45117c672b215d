/**
 * Dynamic loss scaling for fp16 training (torch.cuda.amp.GradScaler's rule): the loss is multiplied
 * by a power of two so that small gradients do not flush to zero in fp16; before the step the
 * gradients are divided back (exact: a power of two); a step whose gradients overflowed (inf or NaN)
 * is skipped and the scale halved; after `growthInterval` clean steps in a row it doubles.
 */
import { Tensor } from '../engine/tensor';
import { stack } from '../engine/creation';
import { noGrad } from '../engine/autograd';
import { tidy } from '../engine/scope';
import type { Optimizer } from '../optim/optimizer';

export interface LossScaleState {
  /** The current scale (a power of two). */
  scale: number;
  /** Clean steps since the scale last changed. */
  growthTracker: number;
}

export interface LossScalerOptions {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
}

export class LossScaler {
  #state: LossScaleState;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;

  /** `from`: the state a checkpoint saved, so a resumed run scales as the uninterrupted one. */
  constructor(o: LossScalerOptions = {}, from?: LossScaleState) {
    this.growthFactor = o.growthFactor ?? 2;
    this.backoffFactor = o.backoffFactor ?? 0.5;
    this.growthInterval = o.growthInterval ?? 2000;
    this.#state = from ? { ...from } : { scale: o.initScale ?? 2 ** 16, growthTracker: 0 };
  }

  get state(): LossScaleState {
    return { ...this.#state };
  }

  /** The loss to call backward() on. */
  scaled(loss: Tensor): Tensor {
    return loss.mul(this.#state.scale);
  }

  /**
   * Unscales the gradients of opt's parameters in place, then steps opt unless one of them is not
   * finite, and updates the scale. Returns whether it stepped. One host synchronisation (the
   * overflow check), as in PyTorch.
   */
  step(opt: Optimizer): boolean {
    const finite = noGrad(() => tidy(() => {
      const grads = opt.groups.flatMap((g) => g.params).map((p) => p.grad).filter((g): g is Tensor => g !== null);
      if (grads.length === 0) return true;
      const inv = 1 / this.#state.scale;
      const bad: Tensor[] = [];
      for (const g of grads) {
        g.mul_(inv);
        bad.push(g.isfinite().logicalNot().any());
      }
      return stack(bad).any().item() === 0;
    }));
    const s = this.#state;
    if (finite) {
      opt.step();
      if (++s.growthTracker === this.growthInterval) {
        s.scale *= this.growthFactor;
        s.growthTracker = 0;
      }
    } else {
      s.scale *= this.backoffFactor;
      s.growthTracker = 0;
    }
    return finite;
  }
}
