/**
 * Deterministic splits and sampling. Everything is stratified per class and seeded by (seed,
 * stage, class), so adding a class or changing `shots` never reshuffles the other classes.
 * A dataset's own test split is kept as test; val is carved from train only when missing.
 */
import { Dataset, Item, Splits } from './dataset';
import { Rng } from './rng';
import { InputError } from '../errors';
import { stratifiedFolds } from './folds';

export interface SplitOptions {
  seed?: number;
  /** Fraction of train held out as val when the source has no val split (default 0.1; 0 for none). */
  val?: number;
  /** Fraction held out as test when the source has no test split (default 0.2). */
  test?: number;
  /** Keep k training examples per class (few-shot). */
  shots?: number;
  /** Keep these classes, by name or index, labelled in the order given. */
  classes?: (string | number)[];
}

export const SPLIT_DEFAULTS = { seed: 0, val: 0.1, test: 0.2 };

const STAGE_TEST = 1, STAGE_VAL = 2, STAGE_SHOTS = 3;

function byClass(items: Item[], numClasses: number): Item[][] {
  const out: Item[][] = Array.from({ length: numClasses }, () => []);
  for (const it of items) out[it.label].push(it);
  for (const g of out) g.sort((a, b) => a.index - b.index);
  return out;
}

/**
 * Moves round(frac × n) of each class out of `items`, but at least one (small folders: 10% of 4
 * images would round to none, and model selection would silently run on the other classes only)
 * and never the last one, which stays for training.
 */
function carve(items: Item[], numClasses: number, frac: number, seed: number, stage: number): { keep: Item[]; out: Item[] } {
  const keep: Item[] = [], out: Item[] = [];
  byClass(items, numClasses).forEach((g, c) => {
    new Rng(seed, stage, c).shuffle(g);
    const n = Math.min(Math.max(1, Math.round(g.length * frac)), Math.max(0, g.length - 1));
    out.push(...g.slice(0, n));
    keep.push(...g.slice(n));
  });
  const order = (a: Item, b: Item) => a.index - b.index;
  return { keep: keep.sort(order), out: out.sort(order) };
}

function fraction(v: number | undefined, fallback: number, name: string): number {
  const f = v ?? fallback;
  if (!(f >= 0 && f < 1)) throw new InputError(`${name} fraction must be in [0, 1), got ${f}`);
  return f;
}

export function selectDatasetClasses(ds: Dataset, wanted: (string | number)[]): Dataset {
  const idx = wanted.map((w) => {
    const i = typeof w === 'number' ? w : ds.classes.indexOf(w);
    if (!Number.isInteger(i) || i < 0 || i >= ds.classes.length) throw new InputError(`${ds.name}: unknown class '${w}'`);
    return i;
  });
  if (new Set(idx).size !== idx.length) throw new InputError(`${ds.name}: a class is selected twice`);
  if (idx.length < 2) throw new InputError(`${ds.name}: at least 2 classes are needed, got ${idx.length}`);
  const relabel = new Map(idx.map((old, neu) => [old, neu]));
  const map = (items?: Item[]) => items?.filter((it) => relabel.has(it.label)).map((it) => ({ index: it.index, label: relabel.get(it.label)! }));
  const splits: Splits = { train: map(ds.splits.train)! };
  if (ds.splits.val) splits.val = map(ds.splits.val);
  if (ds.splits.test) splits.test = map(ds.splits.test);
  return { ...ds, classes: idx.map((i) => ds.classes[i]), splits };
}

/** Applies class selection, carves missing val/test splits and samples shots, all by seed. */
export function makeSplits(ds: Dataset, opts: SplitOptions = {}): Dataset {
  const seed = opts.seed ?? SPLIT_DEFAULTS.seed;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new InputError(`seed must be a non-negative integer, got ${seed}`);
  let d = opts.classes ? selectDatasetClasses(ds, opts.classes) : ds;
  const k = d.classes.length;
  let train = d.splits.train, val = d.splits.val, test = d.splits.test;
  if (!test) {
    const f = fraction(opts.test, SPLIT_DEFAULTS.test, 'test');
    if (f > 0) { const r = carve(train, k, f, seed, STAGE_TEST); train = r.keep; test = r.out; }
  }
  if (!val) {
    const f = fraction(opts.val, SPLIT_DEFAULTS.val, 'val');
    if (f > 0) { const r = carve(train, k, f, seed, STAGE_VAL); train = r.keep; val = r.out; }
  }
  if (opts.shots !== undefined) {
    if (!Number.isInteger(opts.shots) || opts.shots < 1) throw new InputError(`shots must be a positive integer, got ${opts.shots}`);
    const groups = byClass(train, k);
    const heldOut = byClass([...(val !== d.splits.val ? val ?? [] : []), ...(test !== d.splits.test ? test ?? [] : [])], k);
    const picked: Item[] = [];
    groups.forEach((g, c) => {
      if (g.length < opts.shots!) {
        const carved = heldOut[c].length ? ` (${heldOut[c].length} more are held out for validation and test)` : '';
        throw new InputError(`${d.name}: class '${d.classes[c]}' has ${g.length} training examples${carved}, fewer than shots=${opts.shots}; lower --shots or add images`);
      }
      picked.push(...new Rng(seed, STAGE_SHOTS, c).shuffle(g).slice(0, opts.shots));
    });
    train = picked.sort((a, b) => a.index - b.index);
  }
  byClass(train, k).forEach((g, c) => {
    if (g.length === 0) throw new InputError(`${d.name}: class '${d.classes[c]}' has no training examples`);
  });
  const splits: Splits = { train };
  if (val && val.length) splits.val = val;
  if (test && test.length) splits.test = test;
  d = { ...d, splits };
  return d;
}

/**
 * What a training run needs of its splits, checked once with one clear message: training images,
 * a test split, and a validation split that can select a model — every class in it at least once
 * (so never fewer validation images than classes).
 */
export function checkTrainingSplits(ds: Dataset, where = ds.name): void {
  const { train, val, test } = ds.splits;
  if (train.length === 0) throw new InputError(`${where}: the training split is empty`);
  if (!val?.length) throw new InputError(`${where}: no validation split (model selection needs one; raise the val fraction)`);
  if (!test?.length) throw new InputError(`${where}: no test split (raise the test fraction)`);
  const inVal = byClass(val, ds.classes.length);
  const missing = ds.classes.filter((_, c) => inVal[c].length === 0);
  if (missing.length) {
    const all = byClass([...train, ...val, ...test], ds.classes.length);
    const list = missing.slice(0, 5).map((name) => `'${name}' (${all[ds.classes.indexOf(name)].length} images)`).join(', ');
    throw new InputError(`${where}: ${val.length} validation image${val.length === 1 ? '' : 's'} for ${ds.classes.length} classes; no validation image of ${list}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''} — `
      + 'each class needs at least 3 images (one each for training, validation and test); add images or drop those classes (--classes)');
  }
}

/**
 * The dataset as a validation-search trial sees it: its final score reads the validation split
 * where a run reads the test split, so the test images are never opened (splitOrigin records it
 * for the data layer's split-open events).
 */
export function scoredOnValidation(ds: Dataset): Dataset {
  if (!ds.splits.val) throw new InputError(`${ds.name}: no validation split to score on`);
  return { ...ds, splits: { ...ds.splits, test: ds.splits.val }, splitOrigin: { ...ds.splitOrigin, test: 'val' } };
}

/**
 * Fold `fold` of `folds` of a cross-validation over the training and validation images pooled
 * (stratified, by seed: data/folds.ts): that fold becomes the validation split, the others the
 * training split. The test split is left as it is, unopened; a fold's trial is scored on its
 * validation split (scoredOnValidation).
 */
export function crossValidationFold(ds: Dataset, fold: number, folds: number, seed: number): Dataset {
  if (!(Number.isInteger(folds) && folds >= 2 && Number.isInteger(fold) && fold >= 0 && fold < folds)) {
    throw new InputError(`cross-validation: fold ${fold} of ${folds} (expected 0 <= fold < folds, folds >= 2)`);
  }
  const pool = [...ds.splits.train, ...(ds.splits.val ?? [])].sort((a, b) => a.index - b.index);
  const foldOf = stratifiedFolds(Int32Array.from(pool, (it) => it.label), folds, seed);
  const train = pool.filter((_, i) => foldOf[i] !== fold), val = pool.filter((_, i) => foldOf[i] === fold);
  return { ...ds, splits: { ...ds.splits, train, val } };
}
