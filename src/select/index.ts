/**
 * `adafilter select`: evolutionary selection of a frozen backbone's features (after Tian, Chen &
 * Shyu 2020; reconstructed, see genome.ts). The backbone's tap outputs (the stem's output and every
 * block output, mean- and max-pooled) are computed once for the training and validation splits;
 * the search trains heads on those cached features only (fitness.ts, evolve.ts); the chosen genome
 * then becomes an ordinary run (method tap-probe) in the same folder, which reads the test split
 * once, at its end. The folder also keeps every candidate (candidates.jsonl) and the search
 * (select.json: settings, fitness by generation, the choice, the cost of each step).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setNumThreads } from '../engine/runtime';
import { manualSeed } from '../engine/random';
import { tidy } from '../engine/scope';
import { noGrad } from '../engine/autograd';
import { openDataset } from '../data/registry';
import { checkTrainingSplits } from '../data/split';
import { createLoader } from '../data/loader';
import { evalTransform } from '../data/transforms';
import { mix } from '../data/rng';
import type { Dataset } from '../data/dataset';
import { appendLine, writeJsonAtomic } from '../io/atomic';
import { InputError } from '../errors';
import { applyMethod } from '../methods/registry';
import { TAP_POOLS, TapProbeModel, formatTaps, tapWidths } from '../methods/tap-probe';
import { splitNames } from '../methods/layer-split';
import { openBackbone, inputTransform } from '../train/backbones';
import { inputsOf } from '../train/batch';
import { fineTune } from '../train/trainer';
import type { RunResult } from '../train/run-folder';
import type { TrainEvent } from '../train/options';
import { FeatureRows, HeadRecipe, scoreHead } from './fitness';
import { Candidate, Evolution, GenerationRecord, evolve } from './evolve';
import { Genome, TapSpace } from './genome';

export { evolve } from './evolve';
export type { Candidate, Evolution, GenerationRecord } from './evolve';
export { scoreHead } from './fitness';
export type { FeatureRows, HeadRecipe } from './fitness';
export * from './genome';

export const SELECT_FILES = { search: 'select.json', candidates: 'candidates.jsonl' } as const;

export interface SelectOptions {
  data: string;
  /** One backbone spec (default: the shipped one). */
  backbone?: string;
  shots?: number;
  classes?: (string | number)[];
  valFraction?: number;
  testFraction?: number;
  seed?: number;
  /** Individuals per generation (default 8) and generations after the initial one (default 5). */
  population?: number;
  generations?: number;
  /** Fitness cost of using every tap (default 0.01). */
  penalty?: number;
  /** Head training: epochs over the training split (default 30), batch (32), weight decay (5e-4), momentum (0.9). */
  epochs?: number;
  batch?: number;
  weightDecay?: number;
  momentum?: number;
  threads?: number;
  workers?: number;
  out: string;
  onCandidate?: (c: Candidate) => void;
  onGeneration?: (g: GenerationRecord) => void;
  onEvent?: (e: TrainEvent) => void;
}

export interface SelectResult {
  dir: string;
  best: Candidate;
  generations: GenerationRecord[];
  evaluated: number;
  /** The final tap-probe run in `dir` (its test accuracy read once, at its end). */
  run: RunResult;
  seconds: { features: number; search: number; perCandidate: number; final: number };
}

function check(ok: boolean, msg: string): void {
  if (!ok) throw new InputError(msg);
}

/** Row-major features of every tap × pooling on one split, in loader order. */
export async function tapFeatures(model: TapProbeModel, ds: Dataset, split: 'train' | 'val', transform: Awaited<ReturnType<typeof inputTransform>>, workers: number): Promise<Map<string, FeatureRows>> {
  const loader = await createLoader(ds, { split, batch: 100, transform: evalTransform(transform), workers, shuffle: false });
  const widths = model.taps.map((t) => tapWidths(model.backbone).get(t.name)!);
  const parts: Float32Array[][] = model.taps.map(() => []);
  const labels: number[] = [];
  try {
    for await (const b of loader.epoch(0)) {
      const f = tidy(() => noGrad(() => model.tapFeatures(inputsOf(b)).contiguous().data() as Float32Array));
      const n = b.y.length, dim = model.featureWidth;
      let at = 0;
      model.taps.forEach((_, i) => {
        const w = widths[i], block = new Float32Array(n * w);
        for (let r = 0; r < n; r++) block.set(f.subarray(r * dim + at, r * dim + at + w), r * w);
        parts[i].push(block);
        at += w;
      });
      labels.push(...b.y);
    }
  } finally {
    await loader.close();
  }
  const y = Int32Array.from(labels);
  return new Map(model.taps.map((t, i) => {
    const x = new Float32Array(y.length * widths[i]);
    let at = 0;
    for (const p of parts[i]) { x.set(p, at); at += p.length; }
    return [`${t.name}:${t.pool}`, { n: y.length, dim: widths[i], x, y }];
  }));
}

/** A genome's taps side by side, row by row: the tap-probe model's features() layout. */
export function assemble(cache: Map<string, FeatureRows>, g: Genome, space: TapSpace): FeatureRows {
  const parts = g.pools.flatMap((p, i) => (p === null ? [] : [cache.get(`${space.names[i]}:${p}`)!]));
  const n = parts[0].n, dim = parts.reduce((s, p) => s + p.dim, 0);
  const x = new Float32Array(n * dim);
  for (let r = 0; r < n; r++) {
    let at = r * dim;
    for (const p of parts) { x.set(p.x.subarray(r * p.dim, (r + 1) * p.dim), at); at += p.dim; }
  }
  return { n, dim, x, y: parts[0].y };
}

/** A 32-bit hash of a genome key (FNV-1a): each genome's head gets its own seed, whenever it is scored. */
function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) { h ^= key.charCodeAt(i); h = Math.imul(h, 0x01000193); }
  return h >>> 0;
}

export async function select(o: SelectOptions): Promise<SelectResult> {
  check(typeof o.data === 'string' && o.data.length > 0, 'select: --data is required');
  check(typeof o.out === 'string' && o.out.length > 0, 'select: --out is required (the folder for the search and the final run)');
  const seed = o.seed ?? 0, population = o.population ?? 8, generations = o.generations ?? 5, penalty = o.penalty ?? 0.01;
  const recipeIn = { epochs: o.epochs ?? 30, batch: o.batch ?? 32, weightDecay: o.weightDecay ?? 5e-4, momentum: o.momentum ?? 0.9 };
  const int = (v: number, name: string, min: number) => check(Number.isInteger(v) && v >= min, `select: --${name} expected an integer >= ${min}, got ${v}`);
  int(seed, 'seed', 0); int(population, 'population', 2); int(generations, 'generations', 0); int(recipeIn.epochs, 'epochs', 1); int(recipeIn.batch, 'batch', 1);
  check(Number.isFinite(penalty) && penalty >= 0, `select: --penalty expected a number >= 0, got ${penalty}`);
  check(Number.isFinite(recipeIn.weightDecay) && recipeIn.weightDecay >= 0, `select: --wd expected a number >= 0, got ${recipeIn.weightDecay}`);
  const dir = path.resolve(o.out);
  for (const f of [SELECT_FILES.search, SELECT_FILES.candidates, 'run.json']) {
    if (fs.existsSync(path.join(dir, f))) throw new InputError(`${dir}: already holds a selection (${f}); use another --out`);
  }
  const backbone = o.backbone ?? 'default';
  const threads = o.threads ?? 1, workers = o.workers ?? 0;
  const ds = await openDataset(o.data, { seed, shots: o.shots, classes: o.classes, val: o.valFraction, test: o.testFraction });
  checkTrainingSplits(ds, o.data);
  setNumThreads(threads);
  manualSeed(seed);
  const bb = openBackbone(backbone, ds.classes.length);
  const names = splitNames(bb.model);
  const widthOf = tapWidths(bb.model);
  const space: TapSpace = { names, widths: names.map((n) => widthOf.get(n)!) };
  const transform = await inputTransform(bb.input, ds);
  const all = applyMethod('tap-probe', bb.model, ds.classes.length, { taps: names.flatMap((n) => TAP_POOLS.map((p) => `${n}:${p}`)).join(',') }) as TapProbeModel;
  const t0 = Date.now();
  let train: Map<string, FeatureRows>, val: Map<string, FeatureRows>;
  try {
    all.eval();
    train = await tapFeatures(all, ds, 'train', transform, workers);
    val = await tapFeatures(all, ds, 'val', transform, workers);
  } finally {
    all.dispose();
  }
  const tFeatures = (Date.now() - t0) / 1000;

  fs.mkdirSync(dir, { recursive: true });
  const candidatesFile = path.join(dir, SELECT_FILES.candidates);
  const settings = { data: o.data, backbone, shots: o.shots ?? null, classes: ds.classes, seed, population, generations, penalty, ...recipeIn, threads,
    trainImages: ds.splits.train.length, valImages: ds.splits.val!.length, space };
  const t1 = Date.now();
  const evo: Evolution = await evolve(space, (g, key) => {
    const recipe: HeadRecipe = { classes: ds.classes.length, ...recipeIn, seed: mix(seed, hashKey(key)) };
    return scoreHead(assemble(train, g, space), assemble(val, g, space), g, recipe);
  }, { population, generations, seed, penalty }, (c) => {
    appendLine(candidatesFile, JSON.stringify({ ...c, genome: undefined }));
    o.onCandidate?.(c);
  });
  const tSearch = (Date.now() - t1) / 1000;
  for (const g of evo.generations) o.onGeneration?.(g);
  const distinct = evo.candidates.filter((c) => !c.repeat).length;

  const best = evo.best;
  const t2 = Date.now();
  const run = await fineTune({
    backbone, data: o.data, shots: o.shots, classes: o.classes, valFraction: o.valFraction, testFraction: o.testFraction, seed,
    method: 'tap-probe', methodOptions: { taps: formatTaps(best.taps), hidden: best.hidden, dropout: best.dropout },
    lr: best.lr, epochs: recipeIn.epochs, batch: recipeIn.batch, weightDecay: recipeIn.weightDecay, momentum: recipeIn.momentum,
    augment: false, threads, workers, out: dir, onEvent: o.onEvent,
  });
  const tFinal = (Date.now() - t2) / 1000;
  const seconds = { features: tFeatures, search: tSearch, perCandidate: tSearch / Math.max(1, distinct), final: tFinal };
  writeJsonAtomic(path.join(dir, SELECT_FILES.search), {
    version: 1, settings, generations: evo.generations, best: { ...best, genome: undefined }, evaluated: distinct, candidates: evo.candidates.length,
    final: { dir: '.', valAcc: run.val.acc, testAcc: run.test.acc }, seconds,
    note: 'fitness = validation accuracy of a head trained on cached training-split features, minus the size penalty; the test split is read once, by the final run',
  });
  return { dir, best, generations: evo.generations, evaluated: distinct, run, seconds };
}
