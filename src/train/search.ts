/**
 * `--auto`: a small validation search before the run. Each method gets the same fixed number of
 * trials — learning rates, and for methods with a gate or policy network (lr, gate lr) pairs —
 * each a full run at the run's own budget, judged on the validation split only; the best one
 * becomes the run. Trials are scored on validation at their end (TrainOptions.evaluateOn 'val'), so
 * the test split is read once: by the final run, after the choice.
 *
 * The final run is the chosen trial continued: a trial trains exactly as a run with its settings
 * (same seed, same batches), so its folder is copied and resumed, which only adds the test score.
 *
 *   RUN/trials/<k>/   trial k's run folder (its result.json scores the validation split)
 *   RUN/search.json   every trial's settings and validation score, and the choice
 *   RUN/run.json …    the final run (the chosen trial's settings)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import { getMethod } from '../methods/registry';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic';
import { fineTune, NonFiniteLoss } from './trainer';
import { resolveOptions, TrainOptions } from './options';
import { isRunFolder, readResult, RUN_FILES, RunResult } from './run-folder';
import { compare, compareDir, CompareOptions, Comparison, methodOptionsFor } from './compare';

export interface Trial {
  lr: number;
  /** Set for methods whose gate / policy network has a learning rate of its own. */
  gateLr?: number;
}

/** Trials per method: the same for every method, so a comparison gives none a larger search. */
export const TRIALS_PER_METHOD = 3;

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

export function searchGrid(method: string): Trial[] {
  if (method === 'linear-probe') return PROBE_GRID;
  if (!hasGateLr(method)) return LRS.map((lr) => ({ lr }));
  const factor = getMethod(method).gateLrFactor ?? 1;
  return LRS.map((lr) => ({ lr, gateLr: lr * factor }));
}

export interface TrialRecord extends Trial {
  trial: number;
  /** The trial's run folder, relative to the run's. */
  dir: string;
  /** Best validation accuracy and its loss (the epoch model selection keeps); null when the trial diverged. */
  valAcc: number | null;
  valLoss: number | null;
  bestEpoch: number | null;
  /** Why the trial has no score (its loss became NaN: that lr is too large); it cannot be chosen. */
  error?: string;
}

export interface SearchRecord {
  version: 1;
  method: string;
  rule: string;
  trials: TrialRecord[];
  /** Index into trials of the final run's settings. */
  chosen: number;
  lr: number;
  gateLr: number | null;
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

export interface AutoHooks {
  /** Before trial k (0-based) of `total`, and with k === total before the final run. */
  onTrial?: (k: number, total: number, trial: Trial) => void;
  /** Other trials than searchGrid(method) (API only; compare --auto keeps the same grid for every method). */
  grid?: Trial[];
}

function settingsOf(t: Trial): Partial<TrainOptions> {
  return t.gateLr === undefined ? { lr: t.lr } : { lr: t.lr, gateLr: t.gateLr };
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
 * `train --auto`: TRIALS_PER_METHOD trials of `opts.method` on the validation split, then the
 * final run with the best one's settings in `opts.out`. With `resume`, finished trials are reused
 * and an interrupted trial or final run continues.
 */
export async function autoTrain(opts: TrainOptions, hooks: AutoHooks = {}): Promise<{ result: RunResult; search: SearchRecord }> {
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
  if (!grid.length || grid.some((t) => !(t.lr > 0) || (t.gateLr !== undefined && !(t.gateLr > 0)))) throw new InputError('--auto: trials need positive learning rates');
  const trials: TrialRecord[] = [];
  for (const [k, t] of grid.entries()) {
    const tdir = path.join(dir, 'trials', String(k));
    hooks.onTrial?.(k, grid.length, t);
    const rec = { trial: k, ...t, dir: path.relative(dir, tdir) };
    const failed = path.join(tdir, FAILED_FILE);
    if (fs.existsSync(failed)) {
      trials.push({ ...rec, valAcc: null, valLoss: null, bestEpoch: null, error: String(JSON.parse(fs.readFileSync(failed, 'utf8')).error) });
      continue;
    }
    let r = readResult(tdir);
    if (!r) {
      try {
        r = await fineTune({ ...opts, ...settingsOf(t), out: tdir, resume: isRunFolder(tdir), evaluateOn: 'val' });
      } catch (e) {
        if (!(e instanceof NonFiniteLoss)) throw e;
        writeJsonAtomic(failed, { error: e.message });
        trials.push({ ...rec, valAcc: null, valLoss: null, bestEpoch: null, error: e.message });
        continue;
      }
      // Say so in the trial's own folder: anyone reading its result.json sees what "test" means there.
      writeJsonAtomic(path.join(tdir, RUN_FILES.result), { ...r, note: TRIAL_NOTE });
    }
    trials.push({ ...rec, valAcc: r.val.acc, valLoss: r.val.loss, bestEpoch: r.bestEpoch });
  }
  const chosen = chooseTrial(trials);
  if (chosen < 0) throw new InputError(`${dir}: every trial's loss became NaN or infinite (${grid.map((t) => `lr ${t.lr}`).join(', ')}); see ${path.join(dir, 'trials')}`);
  const search: SearchRecord = { version: 1, method: o.method, rule: RULE, trials, chosen, lr: grid[chosen].lr, gateLr: grid[chosen].gateLr ?? null };
  writeJsonAtomic(searchFile, search);
  hooks.onTrial?.(grid.length, grid.length, grid[chosen]);
  if (!isRunFolder(dir)) adoptTrial(path.join(dir, trials[chosen].dir), dir);
  const result = await fineTune({ ...opts, ...settingsOf(grid[chosen]), out: dir, resume: true });
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
export async function autoCompare(o: CompareOptions, hooks: AutoHooks & { onMethod?: (method: string) => void } = {}): Promise<Comparison> {
  for (const m of o.methods) getMethod(m);
  const out = compareDir(o);
  const { methods: _m, seeds: _s, methodOptionsByMethod: _b, onRun: _r, searched: _x, ...common } = o;
  const searched: NonNullable<CompareOptions['searched']> = {};
  for (const method of o.methods) {
    hooks.onMethod?.(method);
    const dir = path.join(out, `${method}-s0`);
    const { search } = await autoTrain({ ...common, method, seed: 0, out: dir, resume: true, methodOptions: methodOptionsFor(o, method) }, hooks);
    searched[method] = { lr: search.lr, ...(search.gateLr !== null ? { gateLr: search.gateLr } : {}), search: path.relative(out, path.join(dir, SEARCH_FILE)) };
  }
  return compare({ ...o, searched });
}
