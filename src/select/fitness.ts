/**
 * A genome's fitness: the held-out accuracy of a head (the tap-probe head, methods/tap-probe.ts)
 * trained on cached features of its taps, minus a size penalty (evolve.ts). Held out either by
 * cross-validation — F stratified folds (folds.ts) over the pooled training and validation rows,
 * each fold scored by a head trained on the other F − 1, so every pooled image is scored once — or,
 * with one fold, by the validation split alone (a head trained on the training split). Only
 * training and validation images are ever read here. The recipe is the trainer's (SGD, momentum
 * 0.9, weight decay on every head weight, cosine per step, the same batch and epochs), so the final
 * run trains the chosen head the way its fitness was measured.
 */
import { fromTyped } from '../engine/creation';
import { manualSeed } from '../engine/random';
import { tidy } from '../engine/scope';
import { noGrad } from '../engine/autograd';
import { Linear } from '../nn/linear';
import { crossEntropy } from '../nn/functional';
import { SGD } from '../optim/sgd';
import { Rng, mix } from '../data/rng';
import { tapHeadBody } from '../methods/tap-probe';

/** Row-major features [n, dim] with their labels. */
export interface FeatureRows {
  n: number;
  dim: number;
  x: Float32Array;
  y: Int32Array;
}

export interface HeadRecipe {
  classes: number;
  epochs: number;
  batch: number;
  weightDecay: number;
  momentum: number;
  seed: number;
}

/** Held-out accuracy and mean cross-entropy (of the validation split, or of every fold's held-out rows). */
export interface HeadScore {
  valAcc: number;
  valLoss: number;
}

const int64 = (y: Int32Array) => fromTyped(BigInt64Array.from(y, (v) => BigInt(v)), 'int64', [y.length]);

/** The rows `idx` of `f`, in that order. */
export function pickRows(f: FeatureRows, idx: ArrayLike<number>): FeatureRows {
  return { n: idx.length, dim: f.dim, x: rowsOf(f, idx), y: Int32Array.from(idx as ArrayLike<number>, (i) => f.y[i]) };
}

/**
 * Cross-validated score: fold k's rows scored by a head trained on the other folds' rows (with
 * recipe.seed mixed with k); accuracy over all rows, loss weighted by fold size.
 */
export function scoreFolds(pool: FeatureRows, foldOf: Int32Array, folds: number, head: { hidden: number; dropout: number; lr: number }, r: HeadRecipe): HeadScore {
  let correct = 0, lossSum = 0;
  for (let k = 0; k < folds; k++) {
    const held: number[] = [], rest: number[] = [];
    foldOf.forEach((f, i) => (f === k ? held : rest).push(i));
    const s = scoreHead(pickRows(pool, rest), pickRows(pool, held), head, { ...r, seed: mix(r.seed, k) });
    if (!Number.isFinite(s.valLoss)) return { valAcc: 0, valLoss: Infinity };
    correct += Math.round(s.valAcc * held.length);
    lossSum += s.valLoss * held.length;
  }
  return { valAcc: correct / pool.n, valLoss: lossSum / pool.n };
}

function rowsOf(f: FeatureRows, idx: ArrayLike<number>): Float32Array {
  const out = new Float32Array(idx.length * f.dim);
  for (let i = 0; i < idx.length; i++) out.set(f.x.subarray(idx[i] * f.dim, (idx[i] + 1) * f.dim), i * f.dim);
  return out;
}

/** Trains a head on `train` and scores it on `val`; deterministic in (recipe.seed, inputs). */
export function scoreHead(train: FeatureRows, val: FeatureRows, head: { hidden: number; dropout: number; lr: number }, r: HeadRecipe): HeadScore {
  manualSeed(r.seed);
  const hidden = head.hidden > 0 ? new Linear(train.dim, head.hidden) : null;
  const out = new Linear(head.hidden > 0 ? head.hidden : train.dim, r.classes);
  const params = [...(hidden?.parameters() ?? []), ...out.parameters()];
  const opt = new SGD([{ params, lr: head.lr, weightDecay: r.weightDecay }], { lr: head.lr, momentum: r.momentum });
  try {
    const perEpoch = Math.ceil(train.n / r.batch), total = perEpoch * r.epochs;
    let step = 0;
    for (let epoch = 0; epoch < r.epochs; epoch++) {
      const order = new Rng(r.seed, 7, epoch).shuffle(Array.from({ length: train.n }, (_, i) => i));
      for (let b = 0; b < perEpoch; b++) {
        const idx = order.slice(b * r.batch, (b + 1) * r.batch);
        opt.groups[0].lr = head.lr * (1 + Math.cos(Math.PI * step / total)) / 2;
        tidy(() => {
          opt.zeroGrad();
          const x = fromTyped(rowsOf(train, idx), 'float32', [idx.length, train.dim]);
          const loss = crossEntropy(out.forward(tapHeadBody(x, hidden, head.dropout, true)), int64(Int32Array.from(idx, (i) => train.y[i])));
          loss.backward();
          opt.step();
        });
        step++;
      }
    }
    return tidy(() => noGrad(() => {
      const logits = out.forward(tapHeadBody(fromTyped(val.x, 'float32', [val.n, val.dim]), hidden, head.dropout, false));
      const y = int64(val.y);
      const loss = crossEntropy(logits, y).item();
      const acc = logits.argmax(1).eq(y).sum().item() / val.n;
      // A diverged head (lr too high) scores 0 rather than NaN, so it is never chosen.
      return Number.isFinite(loss) ? { valAcc: acc, valLoss: loss } : { valAcc: 0, valLoss: Infinity };
    }));
  } finally {
    opt.dispose();
    hidden?.dispose();
    out.dispose();
  }
}
