/**
 * `--auto`: a small validation search before the run. Each method gets the same fixed number of
 * trials — learning rates (for methods with a gate or policy network, (lr, gate lr) pairs) at the
 * run's budget and at twice it — each a full run, judged on validation data only; the best one
 * becomes the run. Trials are scored on validation at their end (TrainOptions.evaluateOn 'val'), so
 * the test split is read once: by the final run, after the choice.
 *
 * A validation split of about one image per class (a folder of ten images per class) cannot rank
 * trials: on the defaults benchmark's Fashion-MNIST folder its 10 images scored 60–80% with no
 * relation to the test split. There each trial is cross-validated instead: the training and
 * validation images pooled into CV_FOLDS stratified folds, one run per fold, the trial's score the
 * accuracy over every pooled image.
 *
 * The final run is the chosen trial continued when the trial trained on the run's own splits (a
 * trial trains exactly as a run with its settings: same seed, same batches), so its folder is copied
 * and resumed, which only adds the test score; after cross-validation it is a run of its own.
 *
 *   RUN/trials/<k>/         trial k's run folder (its result.json scores the validation split)
 *   RUN/trials/<k>/fold<f>/ or, cross-validated, one run folder per fold
 *   RUN/search.json         every trial's settings and validation score, and the choice
 *   RUN/run.json …          the final run (the chosen trial's settings)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import { getMethod } from '../methods/registry';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic';
import { fineTune, NonFiniteLoss, openRunSplits } from './trainer';
import { resolveOptions, TrainOptions } from './options';
import { trainingBudget } from './budget';
import { Dataset } from '../data/dataset';
import { checkFolds, fewestOfClass } from '../data/folds';
import { isRunFolder, readResult, RUN_FILES, RunResult } from './run-folder';
import { compare, compareDir, CompareOptions, Comparison, methodOptionsFor, searchedSettings } from './compare';

export interface Trial {
  lr: number;
  /** Set for methods whose gate / policy network has a learning rate of its own. */
  gateLr?: number;
  /** Optimizer steps as a multiple of the run's budget (default 1: the run's own, train/budget.ts). */
  budget?: number;
}

/**
 * Budgets tried, as multiples of the run's. In the defaults benchmark's 3 lr × 3 budget grid
 * (docs/training.md, 12 (cell, method) pairs) lr 0.03 at twice the default steps was the best point
 * by test accuracy on Quick Draw 20-shot and the Fashion-MNIST folder, where a search over lr alone
 * missed it by 2.5–6.5 points; half the budget was never needed. Chosen by validation accuracy, lr ×
 * {1×, 2×} would have come within 1 point of the grid's best on 9 pairs against 7 for lr alone, for
 * 3× the trials' steps.
 */
export const BUDGETS = [1, 2];

/** Trials per method: the same for every method, so a comparison gives none a larger search. */
export const TRIALS_PER_METHOD = 3 * BUDGETS.length;

/** Folds of a cross-validated search, and when --folds auto uses it: fewer than 2 validation images per class on average. */
export const CV_FOLDS = 3;
const CV_BELOW_PER_CLASS = 2;

/**
 * Backbone lr around the 0.01 default, down to 0.003 because 0.01 diverged for AdaFilter on
 * MobileNetV2 in the transfer benchmark; a probe's head alone wants larger steps. Gated methods keep
 * their own gate-lr ratio (AdaFilter 1000×, SpotTune 10×: the ratio the fidelity search chose, and
 * what the default run uses), so the middle trial is the plain default run. The benchmark's old
 * grid of gate lrs 0.03-0.1 never tried AdaFilter's default and could only lose to it (issue 14).
 */
const LRS = [0.003, 0.01, 0.03];
const PROBE_GRID: Trial[] = [{ lr: 0.03 }, { lr: 0.1 }, { lr: 0.3 }];

/** Whether the method has a gate or policy network that learns (random-filter's gates are drawn, not learned). */
export function hasGateLr(method: string): boolean {
  const m = getMethod(method);
  return Boolean(m.gated) && (m.defaults as { gate?: unknown }).gate !== 'random';
}

/** The trials of a method: its learning rates at each of BUDGETS, the run's own budget first. */
export function searchGrid(method: string): Trial[] {
  const factor = getMethod(method).gateLrFactor ?? 1;
  const lrs: Trial[] = method === 'linear-probe' ? PROBE_GRID : hasGateLr(method) ? LRS.map((lr) => ({ lr, gateLr: lr * factor })) : LRS.map((lr) => ({ lr }));
  return BUDGETS.flatMap((budget) => lrs.map((t) => (budget === 1 ? t : { ...t, budget })));
}

/**
 * How many folds the search validates each trial on: `asked` when a number (1: the validation split
 * alone), or with 'auto' CV_FOLDS when the validation split has fewer than CV_BELOW_PER_CLASS images
 * per class and every class has CV_FOLDS images to deal, else 1. With the reason, for search.json.
 */
export function searchFolds(ds: Dataset, asked: number | 'auto' = 'auto'): { folds: number; why: string } {
  const val = ds.splits.val?.length ?? 0, classes = ds.classes.length;
  const pool = Int32Array.from([...ds.splits.train, ...(ds.splits.val ?? [])], (it) => it.label);
  if (asked !== 'auto') {
    if (!Number.isInteger(asked) || asked < 1) throw new InputError(`--folds: expected an integer >= 1 or auto, got ${asked}`);
    if (asked > 1) checkFolds(pool, asked, ds.classes, '--auto');
    return { folds: asked, why: `--folds ${asked}` };
  }
  if (val >= CV_BELOW_PER_CLASS * classes) return { folds: 1, why: `the validation split (${val} images, ${classes} classes)` };
  if (fewestOfClass(pool, classes).count < CV_FOLDS) return { folds: 1, why: `the validation split (${val} images, ${classes} classes; too few images of a class for ${CV_FOLDS} folds)` };
  return { folds: CV_FOLDS, why: `${CV_FOLDS}-fold cross-validation over the ${pool.length} training and validation images: the validation split has ${val} images for ${classes} classes` };
}

export interface FoldRecord {
  fold: number;
  dir: string;
  valAcc: number;
  valLoss: number;
  /** Validation images of the fold. */
  examples: number;
  bestEpoch: number;
}

export interface TrialRecord extends Trial {
  trial: number;
  /** The trial's run folder, relative to the run's (cross-validated: the folder of its folds' folders). */
  dir: string;
  /** The --steps the trial trained with (null: the run's own budget rule, flags as given). */
  steps: number | null;
  /**
   * Best validation accuracy and its loss (the epoch model selection keeps); cross-validated: the
   * accuracy over every pooled image and the mean loss, each fold at its own best epoch. Null when
   * the trial diverged.
   */
  valAcc: number | null;
  valLoss: number | null;
  /** Null when cross-validated (each fold has its own). */
  bestEpoch: number | null;
  folds?: FoldRecord[];
  /** Why the trial has no score (its loss became NaN: that lr is too large); it cannot be chosen. */
  error?: string;
}

export interface SearchRecord {
  version: 1;
  method: string;
  rule: string;
  /** 1: each trial scored on the validation split; more: cross-validated (see `foldsWhy`). */
  folds: number;
  foldsWhy: string;
  trials: TrialRecord[];
  /** Index into trials of the final run's settings. */
  chosen: number;
  lr: number;
  gateLr: number | null;
  /** The chosen trial's budget multiple and --steps (null: the run's own budget). */
  budget: number;
  steps: number | null;
}

export const SEARCH_FILE = 'search.json';
const TRIAL_NOTE = 'validation-search trial: "test" holds the score on the validation split; the test split was not read';
const RULE = 'highest best-epoch validation accuracy; ties: lower validation loss, then the earlier trial';

/** The winner by RULE among the trials with a score; -1 when none has one. */
export function chooseTrial(trials: Pick<TrialRecord, 'valAcc' | 'valLoss'>[]): number {
  let best = -1;
  trials.forEach((t, k) => {
    if (t.valAcc === null || t.valLoss === null) return;
    const b = best < 0 ? null : trials[best];
    if (!b || t.valAcc > b.valAcc! || (t.valAcc === b.valAcc && t.valLoss < b.valLoss!)) best = k;
  });
  return best;
}

/** A trial that diverged leaves this beside its folder's files, so a rerun does not train it again. */
const FAILED_FILE = 'trial-failed.json';

export interface AutoOptions {
  /** Before trial k (0-based) of `total`, and with k === total before the final run. */
  onTrial?: (k: number, total: number, trial: Trial) => void;
  /** Other trials than searchGrid(method) (API only; compare --auto keeps the same grid for every method). */
  grid?: Trial[];
  /** --folds: 'auto' (default; see searchFolds), 1 (the validation split), or a number of cross-validation folds. */
  folds?: number | 'auto';
}


/** The chosen trial's folder as the run's own, ready to resume: the copy is the run so far. */
function adoptTrial(trialDir: string, dir: string): void {
  for (const f of [RUN_FILES.log, RUN_FILES.model, RUN_FILES.checkpoint, RUN_FILES.config]) {
    const from = path.join(trialDir, f);
    // run.json last: until it is there, the folder is not a run and a rerun copies again.
    if (fs.existsSync(from)) writeFileAtomic(path.join(dir, f), fs.readFileSync(from));
  }
}

/**
 * Trains (or reuses) one trial: a run scored on the validation split, or with folds > 1 one such
 * run per cross-validation fold. Throws NonFiniteLoss when a run diverged.
 */
async function runTrial(opts: TrainOptions, settings: Partial<TrainOptions>, tdir: string, folds: number): Promise<Pick<TrialRecord, 'valAcc' | 'valLoss' | 'bestEpoch' | 'folds'>> {
  const one = async (dir: string, extra: Partial<TrainOptions>): Promise<RunResult> => {
    let r = readResult(dir);
    if (r) return r;
    r = await fineTune({ ...opts, ...settings, ...extra, out: dir, resume: isRunFolder(dir), evaluateOn: 'val' });
    // Say so in the trial's own folder: anyone reading its result.json sees what "test" means there.
    writeJsonAtomic(path.join(dir, RUN_FILES.result), { ...r, note: TRIAL_NOTE });
    return r;
  };
  if (folds === 1) {
    const r = await one(tdir, {});
    return { valAcc: r.val.acc, valLoss: r.val.loss, bestEpoch: r.bestEpoch };
  }
  const rec: FoldRecord[] = [];
  for (let f = 0; f < folds; f++) {
    const dir = path.join(tdir, `fold${f}`);
    const r = await one(dir, { cvFold: { fold: f, folds } });
    rec.push({ fold: f, dir: `fold${f}`, valAcc: r.val.acc, valLoss: r.val.loss, examples: r.test.examples, bestEpoch: r.bestEpoch });
  }
  const n = rec.reduce((a, x) => a + x.examples, 0);
  return {
    valAcc: rec.reduce((a, x) => a + x.valAcc * x.examples, 0) / n,
    valLoss: rec.reduce((a, x) => a + x.valLoss * x.examples, 0) / n,
    bestEpoch: null, folds: rec,
  };
}

/**
 * `train --auto`: TRIALS_PER_METHOD trials of `opts.method` on validation data, then the final run
 * with the best one's settings in `opts.out`. With `resume`, finished trials are reused and an
 * interrupted trial or final run continues.
 */
export async function autoTrain(opts: TrainOptions, hooks: AutoOptions = {}): Promise<{ result: RunResult; search: SearchRecord }> {
  for (const k of ['lr', 'gateLr', 'headLr'] as const) {
    if (opts[k] !== undefined) throw new InputError(`--auto searches the learning rates; drop --${k === 'lr' ? 'lr' : k === 'gateLr' ? 'gate-lr' : 'head-lr'}`);
  }
  if (opts.evaluateOn === 'val') throw new InputError('--auto: the final run is scored on the test split');
  const o = resolveOptions(opts);
  const dir = path.resolve(o.out);
  const searchFile = path.join(dir, SEARCH_FILE);
  if (!o.resume && (fs.existsSync(searchFile) || isRunFolder(dir) || fs.existsSync(path.join(dir, 'trials')))) {
    throw new InputError(`${dir}: already holds a run (use --resume to continue it, or another --out)`);
  }
  const grid = hooks.grid ?? searchGrid(o.method);
  if (!grid.length || grid.some((t) => !(t.lr > 0) || (t.gateLr !== undefined && !(t.gateLr > 0)) || !((t.budget ?? 1) > 0))) throw new InputError('--auto: trials need positive learning rates and budgets');
  const ds = await openRunSplits(o);
  const { folds, why } = searchFolds(ds, hooks.folds);
  // The run's own budget in steps (its flags, or the default rule over its training split); a trial
  // at another multiple, or any cross-validated trial (a fold trains on fewer images), trains that many steps.
  const base = trainingBudget({ trainSize: ds.splits.train.length, batch: o.batch, steps: o.steps, epochs: o.epochs }).steps;
  const stepsAt = (budget = 1) => Math.max(1, Math.round(budget * base));
  const stepsOf = (t: Trial) => ((t.budget ?? 1) === 1 && folds === 1 ? null : stepsAt(t.budget));
  const trials: TrialRecord[] = [];
  for (const [k, t] of grid.entries()) {
    const tdir = path.join(dir, 'trials', String(k));
    hooks.onTrial?.(k, grid.length, t);
    const rec = { trial: k, ...t, dir: path.relative(dir, tdir), steps: stepsOf(t) };
    const failed = path.join(tdir, FAILED_FILE);
    if (fs.existsSync(failed)) {
      trials.push({ ...rec, valAcc: null, valLoss: null, bestEpoch: null, error: String(JSON.parse(fs.readFileSync(failed, 'utf8')).error) });
      continue;
    }
    try {
      trials.push({ ...rec, ...(await runTrial(opts, searchedSettings({ ...t, steps: rec.steps }), tdir, folds)) });
    } catch (e) {
      if (!(e instanceof NonFiniteLoss)) throw e;
      writeJsonAtomic(failed, { error: e.message });
      trials.push({ ...rec, valAcc: null, valLoss: null, bestEpoch: null, error: e.message });
    }
  }
  const chosen = chooseTrial(trials);
  if (chosen < 0) throw new InputError(`${dir}: every trial's loss became NaN or infinite (${grid.map((t) => `lr ${t.lr}`).join(', ')}); see ${path.join(dir, 'trials')}`);
  const pick = grid[chosen];
  // The final run trains on the run's own splits: the chosen budget as --steps unless it is the run's own.
  const finalSteps = (pick.budget ?? 1) === 1 ? null : stepsAt(pick.budget);
  const search: SearchRecord = {
    version: 1, method: o.method, rule: RULE, folds, foldsWhy: why, trials, chosen,
    lr: pick.lr, gateLr: pick.gateLr ?? null, budget: pick.budget ?? 1, steps: finalSteps,
  };
  writeJsonAtomic(searchFile, search);
  hooks.onTrial?.(grid.length, grid.length, pick);
  if (folds === 1 && !isRunFolder(dir)) adoptTrial(path.join(dir, trials[chosen].dir), dir);
  const result = await fineTune({ ...opts, ...searchedSettings({ ...pick, steps: finalSteps }), out: dir, resume: true });
  return { result, search };
}

/** A finished search of a run folder, or null. */
export function readSearch(dir: string): SearchRecord | null {
  const file = path.join(dir, SEARCH_FILE);
  if (!fs.existsSync(file)) return null;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as SearchRecord;
  } catch {
    throw new InputError(`${file}: not valid JSON`);
  }
}

/**
 * `compare --auto`: every method searched the same way (TRIALS_PER_METHOD trials on seed 0's
 * splits, its final run becoming the comparison's seed-0 run), then every seed at each method's
 * chosen settings. Finished trials and runs are reused, as compare reuses its runs.
 */
export async function autoCompare(o: CompareOptions, hooks: AutoOptions & { onMethod?: (method: string) => void } = {}): Promise<Comparison> {
  for (const m of o.methods) getMethod(m);
  const out = compareDir(o);
  const { methods: _m, seeds: _s, methodOptionsByMethod: _b, onRun: _r, searched: _x, ...common } = o;
  const searched: NonNullable<CompareOptions['searched']> = {};
  for (const method of o.methods) {
    hooks.onMethod?.(method);
    const dir = path.join(out, `${method}-s0`);
    const { search } = await autoTrain({ ...common, method, seed: 0, out: dir, resume: true, methodOptions: methodOptionsFor(o, method) }, hooks);
    searched[method] = {
      lr: search.lr, ...(search.gateLr !== null ? { gateLr: search.gateLr } : {}), ...(search.steps !== null ? { steps: search.steps } : {}),
      search: path.relative(out, path.join(dir, SEARCH_FILE)),
    };
  }
  return compare({ ...o, searched });
}
