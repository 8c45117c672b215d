/**
 * What `adafilter select` searches over (a reconstruction of Tian, Chen & Shyu 2020, whose method
 * section we did not have): which tap points of one or more frozen backbones feed the classifier,
 * how each is pooled, and the head's hidden width, dropout and learning rate. Mutation is the only variation
 * operator (evolutionary programming); a gene changes to a neighbouring value.
 */
import { Rng } from '../data/rng';
import { TAP_POOLS, Tap, TapPool, parseTapId } from '../methods/tap-probe';

export const HIDDEN_WIDTHS = [0, 64, 256] as const;
export const DROPOUTS = [0, 0.25, 0.5] as const;
export const LEARNING_RATES = [0.003, 0.01, 0.03, 0.1, 0.3] as const;

export interface Genome {
  /** Per tap name (in forward order): null off, else its pooling. At least one is on. */
  pools: (TapPool | null)[];
  hidden: number;
  dropout: number;
  lr: number;
}

/**
 * The universe a genome indexes: tap points as tap-probe names them (`layer2.1` on backbone 0,
 * `layer2.1@1` on backbone 1), backbone by backbone, each in forward order, with their widths.
 */
export interface TapSpace {
  names: string[];
  widths: number[];
}

export function genomeTaps(g: Genome, space: TapSpace): Tap[] {
  return g.pools.flatMap((p, i) => (p === null ? [] : [{ ...parseTapId(space.names[i]), pool: p }]));
}

/** Concatenated feature width of the chosen taps. */
export function genomeWidth(g: Genome, space: TapSpace): number {
  return g.pools.reduce((s, p, i) => s + (p === null ? 0 : space.widths[i]), 0);
}

/** A canonical string: equal genomes, equal keys (the fitness cache is keyed by it). */
export function genomeKey(g: Genome, space: TapSpace): string {
  return `${g.pools.flatMap((p, i) => (p === null ? [] : [`${space.names[i]}:${p}`])).join(',')}|h${g.hidden}|d${g.dropout}|lr${g.lr}`;
}

/**
 * The linear probe of the first backbone's last block (mean pooled, linear head, lr 0.1): the
 * first individual, so the search starts from the usual baseline.
 */
export function baselineGenome(space: TapSpace): Genome {
  const last = space.names.reduce((at, n, i) => (parseTapId(n).backbone === 0 ? i : at), -1);
  return { pools: space.names.map((_, i) => (i === last ? 'mean' : null)), hidden: 0, dropout: 0, lr: 0.1 };
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];

export function randomGenome(rng: Rng, space: TapSpace): Genome {
  const pools = space.names.map((): TapPool | null => (rng.float() < 0.3 ? pick(rng, TAP_POOLS) : null));
  if (!pools.some((p) => p !== null)) pools[rng.int(pools.length)] = pick(rng, TAP_POOLS);
  return { pools, hidden: pick(rng, HIDDEN_WIDTHS), dropout: pick(rng, DROPOUTS), lr: pick(rng, LEARNING_RATES) };
}

/** One step to a neighbouring value of an ordered list. */
function neighbour<T>(rng: Rng, xs: readonly T[], v: T): T {
  const i = xs.indexOf(v);
  if (i <= 0) return xs[1];
  if (i >= xs.length - 1) return xs[xs.length - 2];
  return xs[rng.float() < 0.5 ? i - 1 : i + 1];
}

/**
 * A mutated copy: 1 + Geometric(1/2) gene changes, each a tap switched on or off or re-pooled, or
 * the hidden width, dropout or lr moved one step. Always differs from the parent and keeps a tap on.
 */
export function mutate(parent: Genome, rng: Rng, space: TapSpace): Genome {
  const key = genomeKey(parent, space);
  for (;;) {
    const g: Genome = { ...parent, pools: [...parent.pools] };
    let changes = 1;
    while (rng.float() < 0.5) changes++;
    for (let c = 0; c < changes; c++) {
      const gene = rng.int(space.names.length + 3);
      if (gene < space.names.length) {
        const p = g.pools[gene];
        // Off → a pooling; on → off or the other pooling.
        g.pools[gene] = p === null ? pick(rng, TAP_POOLS) : rng.float() < 0.5 ? null : p === 'mean' ? 'max' : 'mean';
      } else if (gene === space.names.length) g.hidden = neighbour(rng, HIDDEN_WIDTHS, g.hidden as typeof HIDDEN_WIDTHS[number]);
      else if (gene === space.names.length + 1) g.dropout = neighbour(rng, DROPOUTS, g.dropout as typeof DROPOUTS[number]);
      else g.lr = neighbour(rng, LEARNING_RATES, g.lr as typeof LEARNING_RATES[number]);
    }
    if (g.pools.some((p) => p !== null) && genomeKey(g, space) !== key) return g;
  }
}
