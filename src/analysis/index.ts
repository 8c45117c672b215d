/**
 * `analyzeSimilarity`: per-layer similarity of two models on the same images (pretrained vs
 * fine-tuned, two runs, two methods). See docs/methods.md, "Representational analysis".
 */
import { fromTyped } from '../engine/creation';
import { setNumThreads } from '../engine/runtime';
import { manualSeed } from '../engine/random';
import { tidy } from '../engine/scope';
import { openDataset } from '../data/registry';
import { createLoader, Loader } from '../data/loader';
import { InputError } from '../errors';
import { readRunConfig } from '../train/run-folder';
import { blockFeatures, FeatureModel, Features, isRunFolder, openFeatureModel, Pooling } from './features';
import { MinibatchCka, debiasedCka, linearCka, svcca } from './similarity';

export * from './similarity';
export { blockFeatures, openFeatureModel, isRunFolder } from './features';
export type { FeatureModel, Features, LayerFeatures, Pooling } from './features';

export type SimilarityMetric = 'cka' | 'svcca';

export interface SimilarityOptions {
  data: string;
  metric?: SimilarityMetric;
  /** Images of this split (default val: images no run trained on). */
  split?: 'val' | 'train';
  /** How many images (the first of the split, in its fixed order). Default 500. */
  images?: number;
  /** Layers to compare (default: every block, when both models have the same blocks). */
  layers?: string[];
  /** Split seed; default the run's (A's, else B's), else 0. */
  seed?: number;
  /** mean (default): average over H×W, all images at once; flat: every position, minibatch CKA over the batches (cka only). */
  pool?: Pooling;
  /** Images per batch (flat: the minibatch of minibatch CKA). Default 50. */
  batch?: number;
  /** SVCCA: variance fraction kept by the SVD step (default 0.99). */
  keep?: number;
  threads?: number;
}

export interface LayerSimilarity {
  name: string;
  /** Features per image on each side: channels (pool mean) or C·H·W (pool flat). */
  widthA: number;
  widthB: number;
  /** Linear CKA and its debiased form (metric cka). */
  cka?: number | null;
  ckaDebiased?: number | null;
  /** Mean canonical correlation and directions kept on each side (metric svcca). */
  svcca?: number;
  dimsA?: number;
  dimsB?: number;
}

export interface SimilarityResult {
  a: string;
  b: string;
  data: string;
  split: string;
  images: number;
  metric: SimilarityMetric;
  pool: Pooling;
  /** Batches averaged over (pool flat). */
  batches?: number;
  layers: LayerSimilarity[];
}

/** The layers to compare: the ones asked for (each in both models), else every block when A and B have the same. */
function chooseLayers(a: FeatureModel, b: FeatureModel, asked: string[] | undefined): string[] {
  if (asked?.length) {
    for (const n of asked) {
      for (const m of [a, b]) if (!m.blocks.includes(n)) throw new InputError(`layer '${n}' is not a block of ${m.spec} (its blocks: ${m.blocks.join(', ')})`);
    }
    return asked;
  }
  const onlyA = a.blocks.filter((n) => !b.blocks.includes(n)), onlyB = b.blocks.filter((n) => !a.blocks.includes(n));
  if (onlyA.length || onlyB.length) {
    const shared = a.blocks.filter((n) => b.blocks.includes(n));
    throw new InputError(`the two models have different blocks (only in A: ${onlyA.join(', ') || 'none'}; only in B: ${onlyB.join(', ') || 'none'}); `
      + (shared.length ? `choose shared ones with --layers (e.g. ${shared.slice(0, 3).join(',')})` : 'they share no layer to compare'));
  }
  return a.blocks;
}

const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);

export async function analyzeSimilarity(specA: string, specB: string, o: SimilarityOptions): Promise<SimilarityResult> {
  const metric = o.metric ?? 'cka';
  if (metric !== 'cka' && metric !== 'svcca') throw new InputError(`--metric: expected cka or svcca, got '${metric}'`);
  const split = o.split ?? 'val';
  if (split !== 'val' && split !== 'train') throw new InputError(`--split: expected val or train, got '${split}'`);
  const images = o.images ?? 500;
  if (!Number.isInteger(images) || images < 4) throw new InputError(`--images: expected an integer >= 4, got ${images}`);
  const pool = o.pool ?? 'mean';
  if (pool !== 'mean' && pool !== 'flat') throw new InputError(`--pool: expected mean or flat, got '${pool}'`);
  if (pool === 'flat' && metric !== 'cka') throw new InputError('--pool flat works with --metric cka only (CCA of C·H·W directions needs far more images than any run has)');
  const batch = o.batch ?? 50;
  if (!Number.isInteger(batch) || batch < 4) throw new InputError(`--batch: expected an integer >= 4, got ${batch}`);
  if (o.threads) setNumThreads(o.threads);
  // A run's own split settings re-derive its validation images (which it never trained on).
  const runDir = [specA, specB].find(isRunFolder);
  const run = runDir ? readRunConfig(runDir) : null;
  const ds = await openDataset(o.data, { seed: o.seed ?? run?.seed ?? 0, val: run?.valFraction, test: run?.testFraction });
  const items = ds.splits[split]?.length ?? 0;
  if (items < 4) throw new InputError(`${o.data}: the ${split} split has ${items} images; at least 4 are needed`);
  const opened: FeatureModel[] = [];
  const loaders: Loader[] = [];
  try {
    // An architecture spec has random weights: seeded, so an analysis is repeatable.
    manualSeed(o.seed ?? run?.seed ?? 0);
    opened.push(await openFeatureModel(specA, ds));
    opened.push(await openFeatureModel(specB, ds));
    const names = chooseLayers(opened[0], opened[1], o.layers);
    const features: Features[] = [];
    for (const m of opened) {
      // Each model gets its own preprocessing of the same images, in the split's fixed order.
      const loader = await createLoader(ds, { split, batch, transform: m.transform, shuffle: false, workers: 0 });
      loaders.push(loader);
      features.push(await blockFeatures(m, names, loader.epoch(0), images, pool));
    }
    const [fa, fb] = features;
    if (fa.rows !== fb.rows || fa.labels.some((y, i) => y !== fb.labels[i])) throw new Error('internal: the two models did not see the same images');
    const layers = names.map((name, i): LayerSimilarity => tidy(() => {
      const la = fa.layers[i], lb = fb.layers[i];
      const base = { name, widthA: la.dim, widthB: lb.dim };
      if (pool === 'flat') {
        const mb = new MinibatchCka();
        // A last batch under 4 images has no unbiased estimate; it is left out of both sides alike.
        la.grams.forEach((g, j) => {
          if (g.n >= 4) mb.addGrams(fromTyped(g.data, 'float64', [g.n, g.n]), fromTyped(lb.grams[j].data, 'float64', [g.n, g.n]));
        });
        const r = mb.result();
        return { ...base, cka: finite(r.cka), ckaDebiased: finite(r.ckaDebiased) };
      }
      const x = fromTyped(la.data, 'float64', [fa.rows, la.dim]), y = fromTyped(lb.data, 'float64', [fb.rows, lb.dim]);
      if (metric === 'cka') return { ...base, cka: finite(linearCka(x, y)), ckaDebiased: finite(debiasedCka(x, y)) };
      const s = svcca(x, y, { keep: o.keep });
      return { ...base, svcca: s.svcca, dimsA: s.dimsX, dimsB: s.dimsY };
    }));
    const batches = pool === 'flat' ? fa.layers[0]?.grams.filter((g) => g.n >= 4).length ?? 0 : undefined;
    return { a: specA, b: specB, data: o.data, split, images: fa.rows, metric, pool, ...(batches !== undefined ? { batches } : {}), layers };
  } finally {
    await Promise.all(loaders.map((l) => l.close()));
    for (const m of opened) m.dispose();
  }
}
