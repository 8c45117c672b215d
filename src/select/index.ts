/**
 * `adafilter select`: evolutionary selection of frozen backbones' features (after Tian, Chen &
 * Shyu 2020; reconstructed, see genome.ts). Each backbone's tap outputs (the stem's output and
 * every block output, mean- and max-pooled) are computed once for the training and validation
 * splits, with that backbone's own preprocessing; the search trains heads on those cached features
 * only (fitness.ts, evolve.ts), scoring them by cross-validation over the pooled training and
 * validation rows (folds.ts) or, with one fold, on the validation split; the chosen genome then
 * becomes an ordinary run (method tap-probe) in the same folder, which reads the test split once,
 * at its end. The folder also keeps every candidate (candidates.jsonl) and the search (select.json:
 * settings, fitness by generation, the choice, the cost of each step).
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
import { ExtraBackbone, TAP_POOLS, Tap, TapProbeModel, formatTaps, tapId, tapWidths } from '../methods/tap-probe';
import { splitNames } from '../methods/layer-split';
import { BackboneChoice, openBackbone, inputTransform } from '../train/backbones';
import { inputsOf } from '../train/batch';
import { fineTune } from '../train/trainer';
import type { RunResult } from '../train/run-folder';
import type { TrainEvent } from '../train/options';
import { FeatureRows, HeadRecipe, scoreFolds, scoreHead } from './fitness';
import { checkFolds, stratifiedFolds } from '../data/folds';
import { Candidate, Evolution, GenerationRecord, evolve } from './evolve';
import { Genome, TapSpace } from './genome';

export { evolve } from './evolve';
export type { Candidate, Evolution, GenerationRecord } from './evolve';
export { scoreFolds, scoreHead, pickRows } from './fitness';
export { stratifiedFolds } from '../data/folds';
export type { FeatureRows, HeadRecipe } from './fitness';
export * from './genome';

export const SELECT_FILES = { search: 'select.json', candidates: 'candidates.jsonl' } as const;

export interface SelectOptions {
  data: string;
  /**
   * One backbone spec, or several: the genome's taps are then (backbone, tap) pairs, backbone k's
   * taps named `NAME@K` (k from 0; `NAME` alone on the first). Default: the shipped one.
   */
  backbone?: string | string[];
  /**
   * Folds of the cross-validated fitness over the pooled training and validation rows (default 3,
   * stratified by class, seeded); 1: the validation accuracy of a head trained on the training split.
   */
  folds?: number;
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
  /** The backbones the final run reads (those the chosen taps use), its `--backbone` first. */
  backbones: string[];
  /** The final tap-probe run in `dir` (its test accuracy read once, at its end). */
  run: RunResult;
  seconds: { features: number; search: number; perCandidate: number; final: number };
}

function check(ok: boolean, msg: string): void {
  if (!ok) throw new InputError(msg);
}

/**
 * Row-major features of every tap × pooling of a one-backbone model on one split, in loader order,
 * keyed `ID:POOL` with the tap's id as backbone `as` of a selection (tapId).
 */
export async function tapFeatures(model: TapProbeModel, ds: Dataset, split: 'train' | 'val', transform: Awaited<ReturnType<typeof inputTransform>>, workers: number,
  as = 0): Promise<Map<string, FeatureRows>> {
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
    return [`${tapId({ backbone: as, name: t.name })}:${t.pool}`, { n: y.length, dim: widths[i], x, y }];
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

/** Training rows, then validation rows: the pool the folds split. */
function pooledRows(train: Map<string, FeatureRows>, val: Map<string, FeatureRows>): Map<string, FeatureRows> {
  return new Map([...train].map(([k, a]): [string, FeatureRows] => {
    const b = val.get(k)!, x = new Float32Array((a.n + b.n) * a.dim);
    x.set(a.x); x.set(b.x, a.x.length);
    const y = new Int32Array(a.n + b.n);
    y.set(a.y); y.set(b.y, a.n);
    return [k, { n: a.n + b.n, dim: a.dim, x, y }];
  }));
}

/** An opened backbone of the selection with its own preprocessing. */
export interface SearchBackbone {
  spec: string;
  choice: BackboneChoice;
  transform: Awaited<ReturnType<typeof inputTransform>>;
}

/**
 * Backbone k's part of the search: its tap ids and widths, and the features of every tap × pooling
 * on the training and validation splits, computed with its own preprocessing (the images as its
 * own runs see them). Takes the model over and disposes it.
 */
export async function cacheBackbone(b: SearchBackbone, k: number, ds: Dataset, workers: number):
  Promise<{ names: string[]; widths: number[]; train: Map<string, FeatureRows>; val: Map<string, FeatureRows> }> {
  const tapNames = splitNames(b.choice.model), widthOf = tapWidths(b.choice.model);
  let all: TapProbeModel;
  try {
    all = applyMethod('tap-probe', b.choice.model, ds.classes.length, { taps: tapNames.flatMap((n) => TAP_POOLS.map((p) => `${n}:${p}`)).join(',') }) as TapProbeModel;
  } catch (e) {
    b.choice.model.dispose();
    throw e;
  }
  try {
    all.eval();
    return {
      names: tapNames.map((n) => tapId({ backbone: k, name: n })), widths: tapNames.map((n) => widthOf.get(n)!),
      train: await tapFeatures(all, ds, 'train', b.transform, workers, k), val: await tapFeatures(all, ds, 'val', b.transform, workers, k),
    };
  } finally {
    all.dispose();
  }
}

/**
 * The final run's model for the chosen taps: the backbones they read (others are left out), the
 * first of them as the run's own `--backbone`, the rest as tap-probe's further backbones.
 */
export function finalModel(taps: Tap[], backbones: { spec: string; arch: string; archOptions?: ExtraBackbone['archOptions']; stats: { mean: number[]; std: number[] } }[]):
  { backbone: string; methodOptions: Record<string, unknown>; backbones: string[] } {
  const used = [...new Set(taps.map((t) => t.backbone))].sort((a, b) => a - b);
  const renamed = taps.map((t) => ({ ...t, backbone: used.indexOf(t.backbone) }));
  const extras = used.slice(1).map((k): ExtraBackbone => ({
    spec: backbones[k].spec, arch: backbones[k].arch, ...(backbones[k].archOptions ? { archOptions: backbones[k].archOptions } : {}), normalize: backbones[k].stats,
  }));
  return {
    backbone: backbones[used[0]].spec, backbones: used.map((k) => backbones[k].spec),
    methodOptions: { taps: formatTaps(renamed), ...(extras.length ? { backbones: extras, inputStats: backbones[used[0]].stats } : {}) },
  };
}

export async function select(o: SelectOptions): Promise<SelectResult> {
  check(typeof o.data === 'string' && o.data.length > 0, 'select: --data is required');
  check(typeof o.out === 'string' && o.out.length > 0, 'select: --out is required (the folder for the search and the final run)');
  const seed = o.seed ?? 0, population = o.population ?? 8, generations = o.generations ?? 5, penalty = o.penalty ?? 0.01, folds = o.folds ?? 3;
  const recipeIn = { epochs: o.epochs ?? 30, batch: o.batch ?? 32, weightDecay: o.weightDecay ?? 5e-4, momentum: o.momentum ?? 0.9 };
  const int = (v: number, name: string, min: number) => check(Number.isInteger(v) && v >= min, `select: --${name} expected an integer >= ${min}, got ${v}`);
  int(seed, 'seed', 0); int(population, 'population', 2); int(generations, 'generations', 0); int(recipeIn.epochs, 'epochs', 1); int(recipeIn.batch, 'batch', 1);
  int(folds, 'folds', 1);
  check(Number.isFinite(penalty) && penalty >= 0, `select: --penalty expected a number >= 0, got ${penalty}`);
  check(Number.isFinite(recipeIn.weightDecay) && recipeIn.weightDecay >= 0, `select: --wd expected a number >= 0, got ${recipeIn.weightDecay}`);
  const specs = o.backbone === undefined ? ['default'] : typeof o.backbone === 'string' ? [o.backbone] : [...o.backbone];
  check(specs.length > 0 && specs.every((b) => typeof b === 'string' && b.length > 0), 'select: --backbone expected a backbone spec');
  const twice = specs.find((b, i) => specs.indexOf(b) !== i);
  check(twice === undefined, `select: --backbone '${twice}' is given twice`);
  const dir = path.resolve(o.out);
  for (const f of [SELECT_FILES.search, SELECT_FILES.candidates, 'run.json']) {
    if (fs.existsSync(path.join(dir, f))) throw new InputError(`${dir}: already holds a selection (${f}); use another --out`);
  }
  const threads = o.threads ?? 1, workers = o.workers ?? 0;
  const ds = await openDataset(o.data, { seed, shots: o.shots, classes: o.classes, val: o.valFraction, test: o.testFraction });
  checkTrainingSplits(ds, o.data);
  if (folds > 1) checkFolds(Int32Array.from([...ds.splits.train, ...ds.splits.val!], (it) => it.label), folds, ds.classes, 'select');
  setNumThreads(threads);
  manualSeed(seed);
  const opened: SearchBackbone[] = [];
  let handedOver = 0; // opened models from here on are still ours to dispose
  let train = new Map<string, FeatureRows>(), val = new Map<string, FeatureRows>();
  const names: string[] = [], widths: number[] = [];
  const t0 = Date.now();
  try {
    // Every backbone is opened and checked before any features are computed: a bad one fails fast.
    for (const spec of specs) {
      const choice = openBackbone(spec, ds.classes.length);
      let transform: SearchBackbone['transform'];
      try { transform = await inputTransform(choice.input, ds); } catch (e) { choice.model.dispose(); throw e; }
      opened.push({ spec, choice, transform });
    }
    const first = opened[0].transform;
    for (const b of opened.slice(1)) {
      const t = b.transform;
      check(t.height === first.height && t.width === first.width && t.channels === first.channels,
        `select: backbone '${b.spec}' takes ${t.height}×${t.width} images with ${t.channels} channels, '${specs[0]}' ${first.height}×${first.width} with ${first.channels}; the backbones of one selection must share input size and channels`);
    }
    // Random weights are drawn afresh wherever a backbone is opened: over several backbones the
    // final run opens them in another order than the search, so its random weights would not be
    // the ones the search scored. One backbone is opened first in both (right after the seed).
    const random = opened.find((b) => !b.choice.pretrained);
    check(opened.length === 1 || random === undefined,
      `select: backbone '${random?.spec}' has random weights; a selection over several backbones takes pretrained ones (a shipped name or a weights file)`);
    for (const [k, b] of opened.entries()) {
      handedOver = k + 1;
      const c = await cacheBackbone(b, k, ds, workers);
      names.push(...c.names); widths.push(...c.widths);
      train = new Map([...train, ...c.train]); val = new Map([...val, ...c.val]);
    }
  } finally {
    // tap-probe took the models before handedOver over (and disposed them with itself).
    for (const b of opened.slice(handedOver)) b.choice.model.dispose();
  }
  const space: TapSpace = { names, widths };
  const tFeatures = (Date.now() - t0) / 1000;

  const pool = folds > 1 ? pooledRows(train, val) : null;
  const poolY = pool ? pool.values().next().value!.y : null;
  const foldOf = poolY ? stratifiedFolds(poolY, folds, seed) : null;

  fs.mkdirSync(dir, { recursive: true });
  const candidatesFile = path.join(dir, SELECT_FILES.candidates);
  const settings = { data: o.data, backbones: specs, shots: o.shots ?? null, classes: ds.classes, seed, population, generations, penalty, folds, ...recipeIn, threads,
    trainImages: ds.splits.train.length, valImages: ds.splits.val!.length, space };
  const t1 = Date.now();
  const evo: Evolution = await evolve(space, (g, key) => {
    const recipe: HeadRecipe = { classes: ds.classes.length, ...recipeIn, seed: mix(seed, hashKey(key)) };
    return pool ? scoreFolds(assemble(pool, g, space), foldOf!, folds, g, recipe) : scoreHead(assemble(train, g, space), assemble(val, g, space), g, recipe);
  }, { population, generations, seed, penalty }, (c) => {
    appendLine(candidatesFile, JSON.stringify({ ...c, genome: undefined }));
    o.onCandidate?.(c);
  });
  const tSearch = (Date.now() - t1) / 1000;
  for (const g of evo.generations) o.onGeneration?.(g);
  const distinct = evo.candidates.filter((c) => !c.repeat).length;

  const best = evo.best;
  const final = finalModel(best.taps, opened.map((b) => ({
    spec: b.spec, arch: b.choice.arch, archOptions: b.choice.archOptions, stats: { mean: b.transform.mean, std: b.transform.std },
  })));
  const t2 = Date.now();
  const run = await fineTune({
    backbone: final.backbone, data: o.data, shots: o.shots, classes: o.classes, valFraction: o.valFraction, testFraction: o.testFraction, seed,
    method: 'tap-probe', methodOptions: { ...final.methodOptions, hidden: best.hidden, dropout: best.dropout },
    lr: best.lr, epochs: recipeIn.epochs, batch: recipeIn.batch, weightDecay: recipeIn.weightDecay, momentum: recipeIn.momentum,
    augment: false, threads, workers, out: dir, onEvent: o.onEvent,
  });
  const tFinal = (Date.now() - t2) / 1000;
  const seconds = { features: tFeatures, search: tSearch, perCandidate: tSearch / Math.max(1, distinct), final: tFinal };
  const fitness = folds > 1
    ? `the ${folds}-fold cross-validated accuracy (stratified by class, seeded) over the pooled training and validation rows of a head trained on cached features`
    : 'the validation accuracy of a head trained on cached training-split features';
  writeJsonAtomic(path.join(dir, SELECT_FILES.search), {
    version: 1, settings, generations: evo.generations, best: { ...best, genome: undefined }, evaluated: distinct, candidates: evo.candidates.length,
    final: { dir: '.', backbones: final.backbones, taps: final.methodOptions.taps, valAcc: run.val.acc, testAcc: run.test.acc }, seconds,
    note: `fitness = ${fitness}, minus the size penalty; the test split is read once, by the final run`,
  });
  return { dir, best, generations: evo.generations, evaluated: distinct, run, seconds, backbones: final.backbones };
}
