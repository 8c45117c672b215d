/**
 * Similarity of two representations of the same n inputs: X [n, p] and Y [n, q], one row per input.
 * Pure functions on tensors, computed in float64 (CKA of nearly identical layers is 1 − ε with ε far
 * below float32's resolution).
 *
 * - Linear CKA (Kornblith et al., ICML 2019): HSIC of the centred linear Gram matrices, normalised.
 * - Debiased linear CKA (Nguyen, Raghu, Kornblith, ICLR 2021): the same ratio with Song et al.'s
 *   (2012) unbiased HSIC estimator, whose expectation does not depend on n; the biased form
 *   overstates the similarity of unrelated representations when p is large against n.
 * - SVCCA (Raghu et al., NeurIPS 2017): each side reduced by SVD to the top directions keeping a
 *   fraction of the variance, then the mean canonical correlation of the two reduced subspaces.
 */
import { Tensor } from '../engine/tensor';
import { tidy } from '../engine/scope';
import { eye } from '../engine/creation';
import { svd, svdvals } from '../nn/functional';
import { InputError } from '../errors';

function checkPair(x: Tensor, y: Tensor, minRows: number): void {
  if (x.ndim !== 2 || y.ndim !== 2) throw new InputError(`similarity: expected two [n, features] matrices, got [${x.shape}] and [${y.shape}]`);
  if (x.shape[0] !== y.shape[0]) throw new InputError(`similarity: the two representations cover ${x.shape[0]} and ${y.shape[0]} inputs; they must be the same inputs`);
  if (x.shape[0] < minRows) throw new InputError(`similarity: needs at least ${minRows} inputs, got ${x.shape[0]}`);
}

/** Columns minus their means, in float64. */
export function centerColumns(x: Tensor): Tensor {
  return tidy(() => {
    const d = x.to('float64');
    return d.sub(d.mean([0], true));
  });
}

/** Linear CKA, in [0, 1]; NaN when either side is constant over the inputs. */
export function linearCka(x: Tensor, y: Tensor): number {
  checkPair(x, y, 2);
  return tidy(() => {
    const xc = centerColumns(x), yc = centerColumns(y);
    // Gram form: n×n products, whatever the widths (a flattened conv layer can be much wider than n).
    const k = xc.matmul(xc.t()), l = yc.matmul(yc.t());
    const kl = k.mul(l).sum().item(), kk = k.square().sum().item(), ll = l.square().sum().item();
    return kl / Math.sqrt(kk * ll);
  });
}

/**
 * Song et al.'s unbiased HSIC estimator of two n×n Gram matrices (n ≥ 4):
 * [tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1 / ((n−1)(n−2)) − 2/(n−2)·1ᵀK̃L̃1] / (n(n−3)), K̃, L̃ with zeroed diagonals.
 */
export function hsicUnbiased(k: Tensor, l: Tensor): number {
  const n = k.shape[0];
  if (k.ndim !== 2 || k.shape[1] !== n || l.ndim !== 2 || l.shape[0] !== n || l.shape[1] !== n) {
    throw new InputError(`hsicUnbiased: expected two n×n Gram matrices, got [${k.shape}] and [${l.shape}]`);
  }
  if (n < 4) throw new InputError(`hsicUnbiased: needs n ≥ 4 inputs, got ${n}`);
  return tidy(() => {
    const kt = zeroDiagonal(k.to('float64')), lt = zeroDiagonal(l.to('float64'));
    const trace = kt.mul(lt.t()).sum().item();
    const sumK = kt.sum().item(), sumL = lt.sum().item();
    const cross = kt.sum([0]).mul(lt.sum([1])).sum().item(); // 1ᵀK̃L̃1 = (1ᵀK̃)·(L̃1)
    return (trace + sumK * sumL / ((n - 1) * (n - 2)) - 2 * cross / (n - 2)) / (n * (n - 3));
  });
}

function zeroDiagonal(a: Tensor): Tensor {
  return a.sub(a.mul(eye(a.shape[0], { dtype: a.dtype })));
}

/** Debiased linear CKA (unbiased HSIC on linear Grams). Near 0 for unrelated inputs; it can dip slightly below 0. */
export function debiasedCka(x: Tensor, y: Tensor): number {
  checkPair(x, y, 4);
  return tidy(() => {
    // Centring does not change the unbiased estimator; it keeps the Gram entries small.
    const xc = centerColumns(x), yc = centerColumns(y);
    const k = xc.matmul(xc.t()), l = yc.matmul(yc.t());
    return hsicUnbiased(k, l) / Math.sqrt(hsicUnbiased(k, k) * hsicUnbiased(l, l));
  });
}

export interface SvccaResult {
  /** Mean canonical correlation of the two reduced representations. */
  svcca: number;
  /** Directions kept on each side (SVD step). */
  dimsX: number;
  dimsY: number;
  /** The canonical correlations, largest first. */
  correlations: number[];
}

/**
 * The left singular vectors of the centred x spanning `keep` of its variance: the orthonormal basis
 * of the reduced representation (its coordinates are U_k·S_k, whose span is U_k's).
 */
function reducedBasis(x: Tensor, keep: number): Tensor {
  return tidy(() => {
    const [u, s] = svd(centerColumns(x));
    const energy = s.square().data() as Float64Array;
    const total = energy.reduce((a, b) => a + b, 0);
    if (!(total > 0)) throw new InputError('svcca: a representation is constant over the inputs');
    // Directions below a relative 1e-10 of the largest are numerical rank deficiency, never "variance".
    const tol = energy[0] * 1e-20;
    let k = 0, acc = 0;
    while (k < energy.length && energy[k] > tol && acc < keep * total) acc += energy[k++];
    return u.narrow(1, 0, Math.max(k, 1));
  });
}

/** SVCCA; `keep` is the variance fraction kept on each side (Raghu et al.: 0.99). */
export function svcca(x: Tensor, y: Tensor, o: { keep?: number } = {}): SvccaResult {
  const keep = o.keep ?? 0.99;
  if (!(keep > 0 && keep <= 1)) throw new InputError(`svcca: keep must be in (0, 1], got ${keep}`);
  checkPair(x, y, 2);
  return tidy(() => {
    const ux = reducedBasis(x, keep), uy = reducedBasis(y, keep);
    // Canonical correlations of two subspaces = singular values of Qxᵀ Qy for orthonormal bases.
    const rho = Array.from(svdvals(ux.t().matmul(uy)).data() as Float64Array, (r) => Math.min(1, r));
    return { svcca: rho.reduce((a, b) => a + b, 0) / rho.length, dimsX: ux.shape[1], dimsY: uy.shape[1], correlations: rho };
  });
}

/** The biased HSIC estimator tr(KHLH)/(n−1)², H the centring matrix (what linear CKA normalises). */
export function hsicBiased(k: Tensor, l: Tensor): number {
  const n = k.shape[0];
  if (k.ndim !== 2 || k.shape[1] !== n || l.ndim !== 2 || l.shape[0] !== n || l.shape[1] !== n) {
    throw new InputError(`hsicBiased: expected two n×n Gram matrices, got [${k.shape}] and [${l.shape}]`);
  }
  return tidy(() => {
    const center = (g: Tensor) => {
      const d = g.to('float64');
      return d.sub(d.mean([0], true)).sub(d.mean([1], true)).add(d.mean());
    };
    return center(k).mul(center(l)).sum().item() / ((n - 1) * (n - 1));
  });
}

/**
 * Minibatch CKA (Nguyen, Raghu, Kornblith 2021): HSIC estimates averaged over batches of the same
 * inputs, then normalised, CKA = mean HSIC(K, L) / √(mean HSIC(K, K) · mean HSIC(L, L)). Only each
 * batch's b×b Gram matrices are needed, so representations too wide to keep for every input (a
 * spatially flattened conv output) can be compared. With the unbiased estimator the average is an
 * unbiased estimate whatever the batch size; the biased one depends on it.
 */
export class MinibatchCka {
  #sums = { biased: [0, 0, 0], unbiased: [0, 0, 0] };
  batches = 0;

  /** One batch: Gram matrices of the two representations of the same b ≥ 4 inputs. */
  addGrams(k: Tensor, l: Tensor): void {
    if (k.shape[0] < 4) throw new InputError(`minibatch CKA: batches need at least 4 inputs, got ${k.shape[0]}`);
    for (const [kind, f] of [['biased', hsicBiased], ['unbiased', hsicUnbiased]] as const) {
      const s = this.#sums[kind];
      s[0] += f(k, l); s[1] += f(k, k); s[2] += f(l, l);
    }
    this.batches++;
  }

  /** One batch of features [b, p] and [b, q]. */
  add(x: Tensor, y: Tensor): void {
    checkPair(x, y, 4);
    tidy(() => {
      const xd = x.to('float64'), yd = y.to('float64');
      this.addGrams(xd.matmul(xd.t()), yd.matmul(yd.t()));
    });
  }

  /** Biased and debiased minibatch CKA (NaN before any batch). */
  result(): { cka: number; ckaDebiased: number } {
    const r = (s: number[]) => s[0] / Math.sqrt(s[1] * s[2]);
    return { cka: r(this.#sums.biased), ckaDebiased: r(this.#sums.unbiased) };
  }
}
