/**
 * Statistics of the transfer benchmark: the table arithmetic and the paired bootstrap interval.
 * Kept free of libtorch so the unit tests can check them by hand.
 */
import { sampleStd } from '../src/train/compare';

export { sampleStd };

export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/**
 * Quantile by linear interpolation between order statistics (R's type 7, numpy's default), so the
 * interval's ends are reproducible by hand from the sorted values.
 */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = (n - 1) * q;
  const lo = Math.floor(h), hi = Math.ceil(h);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** mulberry32: a small seeded generator; the interval must not change from run to run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One paired difference (method − baseline) of one cell and seed; `group` is its dataset. */
export interface Pair {
  group: string;
  cell: string;
  seed: number;
  diff: number;
}

/**
 * The headline statistic: the mean over groups (datasets) of each group's mean difference. With
 * one group it is the plain mean of the pairs; with several, a dataset with more cells or seeds
 * does not outweigh the others, matching "average over datasets" in the tables.
 */
export function groupedMean(pairs: Pair[]): number {
  const by = new Map<string, number[]>();
  for (const p of pairs) (by.get(p.group) ?? by.set(p.group, []).get(p.group)!).push(p.diff);
  return mean([...by.values()].map(mean));
}

export interface BootstrapInterval {
  estimate: number;
  lo: number;
  hi: number;
  level: number;
  resamples: number;
  seed: number;
  pairs: number;
  groups: number;
  excludesZero: boolean;
}

/**
 * Paired percentile bootstrap of `groupedMean`: pairs are resampled with replacement within their
 * group (each dataset keeps its number of pairs, so every resample has every dataset), the
 * statistic recomputed, and the interval read from the resampled statistics' quantiles.
 */
export function pairedBootstrap(pairs: Pair[], o: { resamples?: number; seed?: number; level?: number } = {}): BootstrapInterval {
  const resamples = o.resamples ?? 10_000, seed = o.seed ?? 0, level = o.level ?? 0.95;
  const groups = new Map<string, number[]>();
  for (const p of pairs) (groups.get(p.group) ?? groups.set(p.group, []).get(p.group)!).push(p.diff);
  const gs = [...groups.values()];
  const estimate = groupedMean(pairs);
  if (!pairs.length) return { estimate: NaN, lo: NaN, hi: NaN, level, resamples, seed, pairs: 0, groups: 0, excludesZero: false };
  const rand = seededRandom(seed);
  const stats = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (const g of gs) {
      let t = 0;
      for (let i = 0; i < g.length; i++) t += g[Math.floor(rand() * g.length)];
      s += t / g.length;
    }
    stats[r] = s / gs.length;
  }
  stats.sort();
  const lo = quantile(stats, (1 - level) / 2), hi = quantile(stats, 1 - (1 - level) / 2);
  return { estimate, lo, hi, level, resamples, seed, pairs: pairs.length, groups: gs.length, excludesZero: lo > 0 || hi < 0 };
}

/** A finished run as the tables need it. */
export interface RunRecord {
  cell: string;
  group: string;
  method: string;
  seed: number;
  valAcc: number;
  testAcc: number;
}

export interface MethodCellRow {
  method: string;
  n: number;
  /** Test accuracy, percent. */
  mean: number;
  std: number;
  /** Test error change against finetune in percentage points (negative: fewer errors); null without finetune. */
  errorChange: number | null;
}

/**
 * Per cell and method: mean ± std test accuracy (%) over seeds and the error change against
 * finetune. The change uses only seeds both methods finished, so a half-done cell compares like
 * with like; it equals the difference of the means when all seeds are there.
 */
export function cellTable(runs: RunRecord[], methods: string[]): MethodCellRow[] {
  const ft = new Map(runs.filter((r) => r.method === 'finetune').map((r) => [r.seed, r.testAcc]));
  return methods.map((method) => {
    const mine = runs.filter((r) => r.method === method);
    const accs = mine.map((r) => 100 * r.testAcc);
    const shared = mine.filter((r) => ft.has(r.seed));
    const errorChange = shared.length ? mean(shared.map((r) => 100 * (ft.get(r.seed)! - r.testAcc))) : null;
    return { method, n: accs.length, mean: mean(accs), std: sampleStd(accs), errorChange };
  }).filter((r) => r.n > 0);
}

/**
 * Per group (dataset): each method's error change against finetune averaged over the group's cells
 * where both ran, then the average over groups that have the method. `cells` lists each group's cells.
 */
export function datasetTable(cellRows: Map<string, MethodCellRow[]>, cellGroup: Map<string, string>, methods: string[]) {
  const groups = [...new Set(cellGroup.values())];
  const perGroup: Record<string, Record<string, number | null>> = {};
  for (const g of groups) {
    perGroup[g] = {};
    for (const m of methods) {
      const xs = [...cellRows.entries()].filter(([c]) => cellGroup.get(c) === g)
        .map(([, rows]) => rows.find((r) => r.method === m)?.errorChange).filter((x): x is number => x !== null && x !== undefined);
      perGroup[g][m] = xs.length ? mean(xs) : null;
    }
  }
  const average: Record<string, { value: number | null; groups: number }> = {};
  for (const m of methods) {
    const xs = groups.map((g) => perGroup[g][m]).filter((x): x is number => x !== null);
    average[m] = { value: xs.length ? mean(xs) : null, groups: xs.length };
  }
  return { groups, perGroup, average };
}

/** Paired differences in test error (percentage points), method − baseline, by cell and seed. */
export function errorPairs(runs: RunRecord[], method: string, baseline = 'finetune'): Pair[] {
  const base = new Map(runs.filter((r) => r.method === baseline).map((r) => [`${r.cell}\u0000${r.seed}`, r.testAcc]));
  return runs.filter((r) => r.method === method && base.has(`${r.cell}\u0000${r.seed}`))
    .map((r) => ({ group: r.group, cell: r.cell, seed: r.seed, diff: 100 * (base.get(`${r.cell}\u0000${r.seed}`)! - r.testAcc) }));
}

/** Per gated layer, the fraction of filters choosing the fine-tuned copy, averaged over runs. */
export function layerFractions(gates: { layers: { name: string; fraction: number; filters: number; filtersVarying: number; exampleStd: number }[]; fraction: number }[]) {
  if (!gates.length) return null;
  const names = gates[0].layers.map((l) => l.name);
  return {
    runs: gates.length,
    overall: mean(gates.map((g) => g.fraction)),
    layers: names.map((name, i) => {
      const ls = gates.map((g) => g.layers[i]);
      return {
        name, filters: ls[0].filters,
        fraction: mean(ls.map((l) => l.fraction)), fractionStd: sampleStd(ls.map((l) => l.fraction)),
        filtersVarying: mean(ls.map((l) => l.filtersVarying)), exampleStd: mean(ls.map((l) => l.exampleStd)),
      };
    }),
  };
}
