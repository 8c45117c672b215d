/**
 * gna's per-layer cluster-count search (`search: 'rl'`), after Yoo et al. 2018, whose LSTM policy,
 * trained by reinforcement learning, picks the number of clusters of each layer. Reconstruction: an
 * LSTM controller (Zoph & Le style: one step per layer, the previous layer's choice as input) picks a
 * ratio from a fixed list for every layer; REINFORCE with a moving-average baseline on a reward the
 * caller computes (gna: validation accuracy of a short fine-tuning run on held-out calibration images).
 */
import { Tensor } from '../engine/tensor';
import { fromTyped, zeros } from '../engine/creation';
import { noGrad } from '../engine/autograd';
import { tidy } from '../engine/scope';
import { Module } from '../nn/module';
import { Linear } from '../nn/linear';
import { LSTMCell } from '../nn/lstm-cell';
import { logSoftmax } from '../nn/functional';
import { AdamW } from '../optim/adamw';
import { Rng } from '../data/rng';

/** The policy: per layer a categorical distribution over `choices`, conditioned on the choices before. */
export class SearchController extends Module {
  cell: LSTMCell;
  head: Linear;

  constructor(readonly choices: number, readonly layers: number, hidden = 32) {
    super();
    this.cell = new LSTMCell(choices, hidden);
    this.head = new Linear(hidden, choices);
  }

  /** Per-layer log-probabilities [layers, choices] when the earlier layers chose `actions` (teacher forcing). */
  private logits(actions: number[], until = this.layers): Tensor[] {
    const hidden = this.cell.hiddenSize;
    let state: [Tensor, Tensor] = [zeros([1, hidden]), zeros([1, hidden])];
    let input = zeros([1, this.choices]);
    const out: Tensor[] = [];
    for (let l = 0; l < until; l++) {
      state = this.cell.forward(input, state);
      out.push(logSoftmax(this.head.forward(state[0]), 1));
      if (l + 1 < until) {
        const onehot = new Float32Array(this.choices);
        onehot[actions[l]] = 1;
        input = fromTyped(onehot, 'float32', [1, this.choices]);
      }
    }
    return out;
  }

  /** One action per layer, each drawn from the policy with `rng` (or its most likely one, `greedy`). */
  sample(rng: Rng | null): number[] {
    const actions: number[] = [];
    noGrad(() => tidy(() => {
      for (let l = 0; l < this.layers; l++) {
        const p = Array.from(this.logits(actions, l + 1)[l].exp().data() as Float32Array);
        let a = p.indexOf(Math.max(...p));
        if (rng) {
          let r = rng.float();
          a = p.length - 1;
          for (let i = 0; i < p.length; i++) if ((r -= p[i]) < 0) { a = i; break; }
        }
        actions.push(a);
      }
    }));
    return actions;
  }

  /** Σ_l log π(a_l | a_<l), differentiable. */
  logProb(actions: number[]): Tensor {
    const lp = this.logits(actions);
    let total: Tensor | null = null;
    lp.forEach((l, i) => {
      const t = l.select(1, actions[i]).sum();
      total = total ? total.add(t) : t;
    });
    return total!;
  }

  forward(): never {
    throw new Error('SearchController: use sample() / logProb()');
  }
}

export interface SearchEpisode {
  actions: number[];
  reward: number;
}

export interface SearchOptions {
  episodes: number;
  /** Controller learning rate (AdamW, no weight decay; default 0.01 — at 0.05 a toy problem already collapsed onto a local optimum). */
  lr?: number;
  seed: number;
  /** Moving-average factor of the reward baseline. */
  baselineDecay?: number;
}

/**
 * REINFORCE: each episode samples one choice per layer, scores it with `reward`, and moves the
 * policy by (reward − baseline)·∇log π. Returns the best-scoring choices seen (the first on ties)
 * and every episode. Deterministic: sampling uses a seeded generator of its own.
 */
export function reinforce(controller: SearchController, reward: (actions: number[]) => number, o: SearchOptions): { best: SearchEpisode; history: SearchEpisode[] } {
  const rng = new Rng(o.seed, 0x726c);
  const opt = new AdamW(controller.parameters(), { lr: o.lr ?? 0.01, weightDecay: 0 });
  const decay = o.baselineDecay ?? 0.8;
  const history: SearchEpisode[] = [];
  let baseline: number | null = null;
  try {
    for (let e = 0; e < o.episodes; e++) {
      const actions = controller.sample(rng);
      const r = reward(actions);
      history.push({ actions, reward: r });
      if (baseline !== null) {
        const advantage = r - baseline;
        tidy(() => {
          opt.zeroGrad();
          controller.logProb(actions).mul(-advantage).backward();
          opt.step();
        });
      }
      baseline = baseline === null ? r : decay * baseline + (1 - decay) * r;
    }
  } finally {
    opt.dispose();
  }
  const best = history.reduce((b, h) => (h.reward > b.reward ? h : b), history[0]);
  return { best, history };
}
