/**
 * Issue 14's acceptance measurement (the `defaults` profile): per cell and method a lr × budget
 * grid, the plain default run and `--auto`, each a real run folder; the gap table compares the
 * default and --auto with the grid point of best TEST accuracy (an oracle: the acceptance asks for
 * "the best point of the grid") and shows the best point by validation accuracy beside it.
 *
 *   OUT/defaults/CELL/METHOD/lrAx-stepsBx/   a grid point (1x: that flag left out)
 *   OUT/defaults/CELL/METHOD/auto/           `train --auto` (its trials under auto/trials/)
 *
 * Reuse, only where identical by construction: the default run is the grid centre (both flags left
 * out, the same options); a grid point whose (lr, gate lr, budget) is one of --auto's trials is that
 * trial's folder continued to the test score, which is how --auto makes its own final run
 * (src/train/search.ts) — except where --auto cross-validates (a fold's trial trains on other images).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { fineTune } from '../src/train/trainer';
import { autoTrain, readSearch, searchFolds, searchGrid } from '../src/train/search';
import { resolveOptions, TRAIN_DEFAULTS, TrainOptions } from '../src/train/options';
import { trainingBudget } from '../src/train/budget';
import { isRunFolder, readResult, readRunConfig, RUN_FILES } from '../src/train/run-folder';
import { openDataset, openSource } from '../src/data/registry';
import { Rng } from '../src/data/rng';
import { writeFileAtomic } from '../src/io/atomic';
import { shippedBackbone } from '../src/train/shipped';
import { machineInfo } from './machine';
import { encodePng, materialiseSubset } from './transfer-data';
import { CellSpec, dataNameOf, DefaultsSpec, FolderSpec, folderDirOf } from './transfer-suite';

// The folders are the same on every machine and in every run.
const FOLDER_SEED = 20261201;

/**
 * Writes a made-up folder once, laid out as FolderSpec says (test/ takes the images after train/'s in
 * one fixed-seed shuffle per class, so the two never share one). Written into DIR.partial and renamed,
 * so a folder that exists is whole.
 */
export async function materialiseFolder(spec: FolderSpec, dir: string): Promise<string> {
  if (fs.existsSync(dir)) return dir;
  const ds = await openSource(spec.source);
  if (ds.storage.kind !== 'memory') throw new Error(`${spec.source}: expected in-memory storage`);
  const { pixels, height, width, channels } = ds.storage;
  const px = height * width * channels;
  const view = new Uint8Array(pixels);
  const partial = `${dir}.partial`;
  fs.rmSync(partial, { recursive: true, force: true });
  const items = [...ds.splits.train, ...(ds.splits.val ?? []), ...(ds.splits.test ?? [])];
  const parts: [string, number][] = spec.testPerClass ? [['train', spec.perClass], ['test', spec.testPerClass]] : [['', spec.perClass]];
  const needed = spec.perClass + (spec.testPerClass ?? 0);
  for (let c = 0; c < ds.classes.length; c++) {
    const g = items.filter((it) => it.label === c).sort((a, b) => a.index - b.index);
    new Rng(FOLDER_SEED, 1, c).shuffle(g);
    if (g.length < needed) throw new Error(`${spec.source}: class ${ds.classes[c]} has ${g.length} images, ${needed} needed`);
    let at = 0;
    for (const [split, n] of parts) {
      const sub = path.join(partial, split, ds.classes[c].replace(/[^A-Za-z0-9 _-]/g, '_'));
      fs.mkdirSync(sub, { recursive: true });
      for (const it of g.slice(at, at + n)) {
        const raw = view.subarray(it.index * px, (it.index + 1) * px);
        const png = spec.size && (spec.size !== width || spec.size !== height)
          ? await sharp(Buffer.from(raw), { raw: { width, height, channels } }).resize(spec.size, spec.size, { kernel: 'lanczos3' }).png().toBuffer()
          : encodePng(raw, width, height, channels as 1 | 3);
        writeFileAtomic(path.join(sub, `${it.index}.png`), png);
      }
      at += n;
    }
  }
  fs.renameSync(partial, dir);
  return dir;
}

/** One grid point: lr and steps as factors of the defaults; a factor of 1 leaves the flag out. */
export interface GridPoint {
  key: string;
  lrFactor: number;
  budgetFactor: number;
  /** The --lr flag (null: left out, the default 0.01). */
  lr: number | null;
  /** The --steps flag (null: left out, the default rule). */
  steps: number | null;
  /** --auto's trial whose folder this point continues (a default-budget point with that trial's lr and gate lr), or null: trained. */
  fromTrial: number | null;
}

export interface DefaultsCellPlan extends CellSpec {
  dataName: string;
  trainSize: number;
  /** The default step rule's steps for this cell (batch 32). */
  defaultSteps: number;
  /** The folds --auto validates its trials on here (searchFolds: 1 = the validation split). */
  autoFolds: number;
  budgetRule: string;
  /** Per method: the grid, and the point the default run is (null: it is a run of its own). */
  grid: Record<string, { points: GridPoint[]; defaultIs: string | null }>;
}

/** Rounds lr factors × 0.01 to what a person would type (0.3 × 0.01 is 0.0030000000000000005 in floats). */
const typed = (x: number) => Number(x.toPrecision(6));
const factorKey = (f: number) => String(f).replace('.', 'p');
export const pointDir = (out: string, cell: string, method: string, key: string) => path.join(out, 'defaults', cell, method, key);
export const autoDir = (out: string, cell: string, method: string) => path.join(out, 'defaults', cell, method, 'auto');

/** The grid of one method on a cell whose default budget is defaultSteps and where --auto validates on `autoFolds` folds. */
export function gridFor(spec: DefaultsSpec, method: string, defaultSteps: number, autoFolds = 1): { points: GridPoint[]; defaultIs: string | null } {
  const lr0 = TRAIN_DEFAULTS.lr;
  const resolved = (lr: number | undefined, gateLr?: number) => {
    const r = resolveOptions({ data: 'x', method, lr, gateLr });
    return `${r.lr}/${r.headLr}/${r.gateLr}`;
  };
  const trials = searchGrid(method).map((t) => `${resolved(t.lr, t.gateLr)}@${t.budget ?? 1}`);
  const points: GridPoint[] = [];
  for (const bf of spec.budgetFactors) {
    for (const lf of spec.lrFactors) {
      const lr = lf === 1 ? null : typed(lf * lr0);
      const steps = bf === 1 ? null : Math.max(1, Math.round(bf * defaultSteps));
      const k = autoFolds === 1 ? trials.indexOf(`${resolved(lr ?? undefined)}@${bf}`) : -1;
      points.push({ key: `lr${factorKey(lf)}x-steps${factorKey(bf)}x`, lrFactor: lf, budgetFactor: bf, lr, steps, fromTrial: k < 0 ? null : k });
    }
  }
  const centre = points.find((p) => p.lr === null && p.steps === null);
  return { points, defaultIs: centre?.key ?? null };
}

export async function planDefaultsCell(spec: DefaultsSpec, cell: CellSpec, out: string): Promise<DefaultsCellPlan> {
  const dataName = dataNameOf(cell, out);
  if (cell.subset) await materialiseSubset(cell.subset, dataName);
  if (cell.folder) await materialiseFolder(cell.folder, folderDirOf(cell.folder, out));
  const ds = await openDataset(dataName, { seed: 0, shots: cell.shots || undefined, val: cell.valFraction, test: cell.testFraction });
  const trainSize = ds.splits.train.length;
  // What the trainer will compute for a run with no budget flag (src/train/trainer.ts: trainingBudget of the training split at the run's batch).
  const b = trainingBudget({ trainSize, batch: TRAIN_DEFAULTS.batch });
  const grid: DefaultsCellPlan['grid'] = {};
  const autoFolds = searchFolds(ds).folds;
  for (const m of cell.methods) grid[m] = gridFor(spec, m, b.steps, autoFolds);
  return { ...cell, dataName, trainSize, defaultSteps: b.steps, autoFolds, budgetRule: b.rule, grid };
}

/** What a worker runs: one grid point (trained, or continued from a trial) or one --auto run. */
export interface DefaultsJob {
  options: TrainOptions;
  auto?: boolean;
  /** A finished trial folder to continue instead of training (see GridPoint.fromTrial). */
  continueFrom?: string;
}

export function runOptions(cell: DefaultsCellPlan, method: string, seed: number, threads: number, out: string, p?: GridPoint): TrainOptions {
  return {
    backbone: cell.backbone, data: cell.dataName, method, seed, threads, workers: 0, out,
    ...(cell.shots ? { shots: cell.shots } : {}),
    ...(cell.valFraction !== undefined ? { valFraction: cell.valFraction } : {}),
    ...(cell.testFraction !== undefined ? { testFraction: cell.testFraction } : {}),
    ...(cell.inputSize !== undefined ? { inputSize: cell.inputSize } : {}),
    ...(p?.lr != null ? { lr: p.lr } : {}),
    ...(p?.steps != null ? { steps: p.steps } : {}),
  };
}

export async function runDefaultsJob(j: DefaultsJob): Promise<void> {
  const dir = j.options.out!;
  if (j.auto) {
    if (readResult(dir)) return;
    await autoTrain({ ...j.options, resume: true });
    return;
  }
  if (readResult(dir)) return;
  if (!isRunFolder(dir) && j.continueFrom && readResult(j.continueFrom)) {
    // As autoTrain adopts its chosen trial: the files that make the run so far, run.json last.
    fs.mkdirSync(dir, { recursive: true });
    for (const f of [RUN_FILES.log, RUN_FILES.model, RUN_FILES.checkpoint, RUN_FILES.config]) {
      const from = path.join(j.continueFrom, f);
      if (fs.existsSync(from)) writeFileAtomic(path.join(dir, f), fs.readFileSync(from));
    }
  }
  await fineTune({ ...j.options, resume: isRunFolder(dir) });
}

export interface DefaultsRunRow {
  cell: string; method: string; seed: number; point: string; lrFactor: number; budgetFactor: number;
  lr: number; gateLr: number; steps: number | null; valAcc: number; valLoss: number; testAcc: number; bestEpoch: number;
  /** Images in the test split (the resolution of its accuracy: one image is 100 / n points). */
  testImages: number;
  trainSeconds: number; secondsPerStep: number | null;
  /** Set when this point's training is --auto's trial (continued to the test score), not a run of its own. */
  continuedFromTrial: number | null;
}

export interface DefaultsGapRow {
  cell: string; group: string; method: string; seed: number;
  gridPoints: number; gridFinished: number;
  /** The grid's best point by test accuracy: the oracle the acceptance compares with (ties: the earlier point). */
  bestByTest: { point: string; testAcc: number; valAcc: number } | null;
  /** The grid's best point by validation accuracy (ties: lower validation loss, the earlier point): what a validation search would pick. */
  bestByVal: { point: string; testAcc: number; valAcc: number } | null;
  default: { testAcc: number; sameRunAs: string | null } | null;
  /**
   * The binomial standard error of the grid best's test accuracy, in points (null: grid unfinished):
   * the noise of one seed's test score, against which the 2- and 1-point bounds are read.
   */
  testSe: number | null;
  /** Points of test accuracy: grid best − default (positive: the default is worse). */
  defaultGap: number | null;
  defaultMeets: boolean | null;
  auto: { testAcc: number; lr: number; gateLr: number | null; budget: number; folds: number; chosenTrial: number } | null;
  autoGap: number | null;
  autoMeets: boolean | null;
}

/**
 * Where and on what a cell was measured. A cell's grid, default and --auto always come from one
 * folder, so from one machine; cells of one report may come from different sittings and machines
 * (mergeDefaults), and a cell counts only while its backbone's weights are the ones it was run on.
 */
export interface CellMeasured {
  /** Of the report that read the cell's runs: the CPU, its bf16 instructions, cores. */
  machine: string;
  /** SHA-256 of the backbone's weights file (null: a backbone built from code, e.g. random resnet20). */
  backboneSha256: string | null;
  /** The newest result.json of the cell's runs (null: none finished). */
  lastResultAt: string | null;
  /** Trainings the cell's plan makes and the runs it reuses (see DefaultsReport). */
  plannedTrainings: number;
  reusedRuns: number;
}

export type DefaultsReportCell = Pick<DefaultsCellPlan, 'id' | 'group' | 'dataName' | 'backbone' | 'shots' | 'trainSize' | 'defaultSteps' | 'autoFolds' | 'budgetRule' | 'grid' | 'folder'> & { measured: CellMeasured };

export interface DefaultsReport {
  lrFactors: number[]; budgetFactors: number[]; defaultGap: number; autoGap: number; seeds: number;
  /** Every cell of the profile, measured or not: the acceptance is about all of them. */
  profileCells: string[];
  cells: DefaultsReportCell[];
  runs: DefaultsRunRow[];
  gaps: DefaultsGapRow[];
  /** Over the rows with a finished grid, default and --auto. */
  summary: { rows: number; defaultMeets: number; autoMeets: number; meanDefaultGap: number | null; maxDefaultGap: number | null; meanAutoGap: number | null; maxAutoGap: number | null };
  /** Trainings the plan makes (grid points continued from a trial and the default-as-centre not counted), and those reused. */
  plannedTrainings: number;
  reusedRuns: number;
}

/** SHA-256 of a backbone's weights: a shipped name's file, or a path; null when it is built from code. */
export function backboneDigest(backbone: string): string | null {
  const file = shippedBackbone(backbone)?.file ?? (fs.existsSync(backbone) ? backbone : null);
  return file ? crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex') : null;
}

function machineOf(): string {
  const m = machineInfo();
  return `${m.cpu} (bf16 instructions: ${m.cpu_bf16}), ${m.cores} cores`;
}

/** The newest result.json under a cell's folder, as an ISO time (null: none). */
function lastResultAt(dir: string): string | null {
  let newest = 0;
  const walk = (d: string) => {
    for (const e of fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }) : []) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (e.name === RUN_FILES.result) newest = Math.max(newest, fs.statSync(path.join(d, e.name)).mtimeMs);
    }
  };
  walk(dir);
  return newest ? new Date(newest).toISOString() : null;
}

/** The standard error of an accuracy p measured on n images, in points. */
export function binomialSe(p: number, n: number): number {
  return 100 * Math.sqrt((p * (1 - p)) / n);
}

/** Best by test accuracy (ties: earlier) and by validation (ties: lower loss, earlier) among finished points. */
export function bestPoints(rows: Pick<DefaultsRunRow, 'point' | 'testAcc' | 'valAcc' | 'valLoss'>[]) {
  let byTest: (typeof rows)[number] | null = null, byVal: (typeof rows)[number] | null = null;
  for (const r of rows) {
    if (!byTest || r.testAcc > byTest.testAcc) byTest = r;
    if (!byVal || r.valAcc > byVal.valAcc || (r.valAcc === byVal.valAcc && r.valLoss < byVal.valLoss)) byVal = r;
  }
  const pick = (r: (typeof rows)[number] | null) => (r ? { point: r.point, testAcc: r.testAcc, valAcc: r.valAcc } : null);
  return { byTest: pick(byTest), byVal: pick(byVal) };
}

function readRow(dir: string, cell: string, method: string, seed: number, p: GridPoint): DefaultsRunRow | null {
  const r = readResult(dir);
  if (!r) return null;
  const cfg = readRunConfig(dir);
  return {
    cell, method, seed, point: p.key, lrFactor: p.lrFactor, budgetFactor: p.budgetFactor, lr: cfg.lr, gateLr: cfg.gateLr, steps: cfg.steps ?? null,
    valAcc: r.val.acc, valLoss: r.val.loss, testAcc: r.test.acc, bestEpoch: r.bestEpoch, testImages: r.test.examples, trainSeconds: r.trainSeconds,
    secondsPerStep: cfg.steps ? r.trainSeconds / cfg.steps : null, continuedFromTrial: p.fromTrial,
  };
}

/** The jobs of a plan: per (cell, method, seed) --auto first (its trials feed grid points), then the grid. */
export function defaultsJobs(spec: DefaultsSpec, cells: DefaultsCellPlan[], seeds: number, threads: number, out: string) {
  const jobs: { id: string; cell: string; method: string; defaults: DefaultsJob; after?: string[] }[] = [];
  for (const c of cells) for (const m of spec.methods.filter((x) => c.methods.includes(x))) for (let s = 0; s < seeds; s++) {
    const seedDir = (d: string) => (seeds > 1 ? `${d}-s${s}` : d);
    const autoId = `defaults/${c.id}/${m}/auto${seeds > 1 ? `-s${s}` : ''}`;
    const aDir = seedDir(autoDir(out, c.id, m));
    jobs.push({ id: autoId, cell: c.id, method: m, defaults: { options: runOptions(c, m, s, threads, aDir), auto: true } });
    for (const p of c.grid[m].points) {
      jobs.push({
        id: `defaults/${c.id}/${m}/${p.key}${seeds > 1 ? `-s${s}` : ''}`, cell: c.id, method: m,
        defaults: { options: runOptions(c, m, s, threads, seedDir(pointDir(out, c.id, m, p.key)), p), ...(p.fromTrial !== null ? { continueFrom: path.join(aDir, 'trials', String(p.fromTrial)) } : {}) },
        ...(p.fromTrial !== null ? { after: [autoId] } : {}),
      });
    }
    if (c.grid[m].defaultIs === null) {
      // No centre in this grid: the default is a run of its own.
      jobs.push({ id: `defaults/${c.id}/${m}/default${seeds > 1 ? `-s${s}` : ''}`, cell: c.id, method: m, defaults: { options: runOptions(c, m, s, threads, seedDir(pointDir(out, c.id, m, 'default'))) } });
    }
  }
  return jobs;
}

/**
 * Whether a gap in points is within a bound. Accuracies are counts over the test size in floating
 * point, so a gap of exactly 2 points (376/450 − 367/450) computes as 2.0000000000000018.
 */
export function withinPoints(gap: number, bound: number): boolean {
  return gap <= bound + 1e-9;
}

export function defaultsReport(spec: DefaultsSpec, cells: DefaultsCellPlan[], seeds: number, out: string): DefaultsReport {
  const runs: DefaultsRunRow[] = [];
  const gaps: DefaultsGapRow[] = [];
  const counts = new Map<string, { plannedTrainings: number; reusedRuns: number }>();
  for (const c of cells) for (const m of spec.methods.filter((x) => c.methods.includes(x))) for (let s = 0; s < seeds; s++) {
    const seedDir = (d: string) => (seeds > 1 ? `${d}-s${s}` : d);
    const g = c.grid[m];
    const n = counts.get(c.id) ?? { plannedTrainings: 0, reusedRuns: 0 };
    counts.set(c.id, n);
    // Cross-validated: every trial once per fold, then a final run of its own.
    n.plannedTrainings += searchGrid(m).length * c.autoFolds + (c.autoFolds > 1 ? 1 : 0) + g.points.filter((p) => p.fromTrial === null).length + (g.defaultIs === null ? 1 : 0);
    n.reusedRuns += g.points.filter((p) => p.fromTrial !== null).length + (g.defaultIs !== null ? 1 : 0);
    const rows = g.points.map((p) => readRow(seedDir(pointDir(out, c.id, m, p.key)), c.id, m, s, p)).filter((x): x is DefaultsRunRow => x !== null);
    runs.push(...rows);
    const defaultRow = g.defaultIs !== null ? rows.find((r) => r.point === g.defaultIs) ?? null
      : readRow(seedDir(pointDir(out, c.id, m, 'default')), c.id, m, s, { key: 'default', lrFactor: 1, budgetFactor: 1, lr: null, steps: null, fromTrial: null });
    if (g.defaultIs === null && defaultRow) runs.push(defaultRow);
    const aDir = seedDir(autoDir(out, c.id, m));
    const ar = readResult(aDir), search = ar ? readSearch(aDir) : null;
    const complete = rows.length === g.points.length;
    const { byTest, byVal } = bestPoints(rows);
    const gap = (x: number | undefined) => (complete && byTest && x !== undefined ? 100 * (byTest.testAcc - x) : null);
    const defaultGap = gap(defaultRow?.testAcc), autoGap = gap(ar?.test.acc);
    gaps.push({
      cell: c.id, group: c.group, method: m, seed: s, gridPoints: g.points.length, gridFinished: rows.length,
      bestByTest: complete ? byTest : null, bestByVal: complete ? byVal : null,
      testSe: complete && byTest ? binomialSe(byTest.testAcc, rows[0].testImages) : null,
      default: defaultRow ? { testAcc: defaultRow.testAcc, sameRunAs: g.defaultIs } : null,
      defaultGap, defaultMeets: defaultGap === null ? null : withinPoints(defaultGap, spec.defaultGap),
      auto: ar && search ? { testAcc: ar.test.acc, lr: search.lr, gateLr: search.gateLr, budget: search.budget ?? 1, folds: search.folds ?? 1, chosenTrial: search.chosen } : null,
      autoGap, autoMeets: autoGap === null ? null : withinPoints(autoGap, spec.autoGap),
    });
  }
  const machine = machineOf();
  const digests = new Map<string, string | null>();
  const digest = (b: string) => (digests.has(b) ? digests.get(b)! : (digests.set(b, backboneDigest(b)), digests.get(b)!));
  const reportCells: DefaultsReportCell[] = cells.map((c) => ({
    id: c.id, group: c.group, dataName: c.dataName, backbone: c.backbone, shots: c.shots, trainSize: c.trainSize, defaultSteps: c.defaultSteps, autoFolds: c.autoFolds, budgetRule: c.budgetRule, grid: c.grid, ...(c.folder ? { folder: c.folder } : {}),
    measured: { machine, backboneSha256: digest(c.backbone), lastResultAt: lastResultAt(path.join(out, 'defaults', c.id)), ...(counts.get(c.id) ?? { plannedTrainings: 0, reusedRuns: 0 }) },
  }));
  return assembleDefaults(spec, seeds, spec.cells.map((c) => c.id), reportCells, runs, gaps);
}

/** A report from its cells, runs and gaps: the summary over the finished pairs, the plan's totals. */
function assembleDefaults(spec: Pick<DefaultsSpec, 'lrFactors' | 'budgetFactors' | 'defaultGap' | 'autoGap'>, seeds: number, profileCells: string[],
  cells: DefaultsReportCell[], runs: DefaultsRunRow[], gaps: DefaultsGapRow[]): DefaultsReport {
  const done = gaps.filter((x) => x.defaultGap !== null && x.autoGap !== null);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, x) => a + x, 0) / xs.length : null);
  const max = (xs: number[]) => (xs.length ? Math.max(...xs) : null);
  return {
    lrFactors: spec.lrFactors, budgetFactors: spec.budgetFactors, defaultGap: spec.defaultGap, autoGap: spec.autoGap, seeds,
    profileCells, cells, runs, gaps,
    summary: {
      rows: done.length, defaultMeets: done.filter((x) => x.defaultMeets).length, autoMeets: done.filter((x) => x.autoMeets).length,
      meanDefaultGap: mean(done.map((x) => x.defaultGap!)), maxDefaultGap: max(done.map((x) => x.defaultGap!)),
      meanAutoGap: mean(done.map((x) => x.autoGap!)), maxAutoGap: max(done.map((x) => x.autoGap!)),
    },
    plannedTrainings: cells.reduce((a, c) => a + c.measured.plannedTrainings, 0),
    reusedRuns: cells.reduce((a, c) => a + c.measured.reusedRuns, 0),
  };
}

/** Whether every (method, seed) pair of a cell has its grid, default and --auto finished. */
export function cellFinished(d: DefaultsReport, cell: string): boolean {
  const g = d.gaps.filter((x) => x.cell === cell);
  return g.length > 0 && g.every((x) => x.defaultGap !== null && x.autoGap !== null);
}

/**
 * The published report and a new one as one: the new report's cells, and the published cells it
 * lacks or has not finished, kept only while their backbone's weights are still the ones they were
 * measured on (`digestOf`, today's SHA-256 of a backbone) — so a measurement can span sittings and
 * machines, cell by cell, and a backbone that changed drops the cells measured on the old one. The
 * grid and bounds must agree (another grid is another measurement: the new report alone).
 */
export function mergeDefaults(published: DefaultsReport | undefined, next: DefaultsReport, digestOf: (backbone: string) => string | null = backboneDigest): { report: DefaultsReport; kept: string[]; dropped: string[] } {
  const same = (a: DefaultsReport, b: DefaultsReport) => JSON.stringify([a.lrFactors, a.budgetFactors, a.defaultGap, a.autoGap, a.seeds]) === JSON.stringify([b.lrFactors, b.budgetFactors, b.defaultGap, b.autoGap, b.seeds]);
  if (!published?.cells.every((c) => c.measured) || !same(published, next)) return { report: next, kept: [], dropped: [] };
  const kept: string[] = [], dropped: string[] = [];
  const take = new Map<string, DefaultsReport>(next.cells.map((c) => [c.id, next]));
  for (const c of published.cells) {
    if (take.has(c.id) && cellFinished(next, c.id)) continue;
    if (!cellFinished(published, c.id)) continue;
    if (c.measured.backboneSha256 === null || c.measured.backboneSha256 !== digestOf(c.backbone)) { dropped.push(c.id); continue; }
    take.set(c.id, published);
    kept.push(c.id);
  }
  const order = [...next.profileCells, ...published.profileCells.filter((id) => !next.profileCells.includes(id))];
  const ids = [...take.keys()].sort((a, b) => order.indexOf(a) - order.indexOf(b));
  const from = (id: string) => take.get(id)!;
  return {
    report: assembleDefaults(next, next.seeds, next.profileCells, ids.map((id) => from(id).cells.find((c) => c.id === id)!),
      ids.flatMap((id) => from(id).runs.filter((r) => r.cell === id)), ids.flatMap((id) => from(id).gaps.filter((g) => g.cell === id))),
    kept, dropped,
  };
}
