/**
 * The transfer benchmark (issue #7): does AdaFilter beat standard fine-tuning on targets the
 * shipped backbone never saw? Each (cell, method) is one compare() call with every seed, so every
 * method of a cell sees identical data per seed, and finished runs are reused: a second invocation
 * continues an interrupted one. Results are read back from the run folders, so the summary can be
 * rebuilt at any time from whatever has finished.
 */
import { fork, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compare, CompareOptions } from '../src/train/compare';
import { isRunFolder, readResult, readRunConfig, RunResult } from '../src/train/run-folder';
import { select, SELECT_FILES } from '../src/select';
import { openBackbone } from '../src/train/backbones';
import { SHIPPED } from '../src/train/shipped';
import { openDataset } from '../src/data/registry';
import { writeJsonAtomic, writeFileAtomic } from '../src/io/atomic';
import { machineInfo } from './machine';
import { materialiseSubset } from './transfer-data';
import { CellSpec, dataNameOf, epochsFor, GATED, Profile, SEARCH_METHODS, SELECT_DEFAULTS, SelectSettings, seedsOf, Trial } from './transfer-suite';
import {
  BootstrapInterval, cellTable, datasetTable, errorPairs, layerFractions, MethodCellRow, pairedBootstrap, RunRecord,
} from './transfer-stats';
import { keepDiscussion, renderResults } from './transfer-report';
import { defaultsJobs, defaultsReport, mergeDefaults, DefaultsCellPlan, DefaultsJob, DefaultsReport, planDefaultsCell, runDefaultsJob } from './transfer-defaults';

export const BOOTSTRAP = { resamples: 10_000, seed: 7, level: 0.95 };

/** What one process runs: plain data, so it can travel to a worker. */
export interface Job {
  id: string;
  kind: 'search' | 'cell';
  cell: string;
  method: string;
  /** A training method's cell: one compare() call over its seeds. */
  options?: Omit<CompareOptions, 'onRun' | 'onEvent' | 'signal'>;
  /** A select cell instead: one search per seed. */
  select?: SelectCellJob;
  /** A defaults-profile run instead (issue 14: a grid point, or --auto). */
  defaults?: DefaultsJob;
  /** Jobs that must finish first (random-filter takes the fractions AdaFilter learned in its cell). */
  after?: string[];
}

/** `adafilter select` on a cell's data, shots, splits and backbone, once per seed, each in OUT/select-sSEED. */
export interface SelectCellJob {
  data: string;
  backbone: string;
  shots: number;
  valFraction?: number;
  testFraction?: number;
  seeds: number;
  threads: number;
  out: string;
  settings: SelectSettings;
}

export async function runJob(job: Job): Promise<void> {
  if (job.select) await runSelectCell(job.select);
  else if (job.defaults) await runDefaultsJob(job.defaults);
  else await compare(job.options!);
}

/** A search finished when its final run has a result and select.json (with the search's seconds) is written. */
function selectFinished(dir: string): boolean {
  return isRunFolder(dir) && readResult(dir) !== null && fs.existsSync(path.join(dir, SELECT_FILES.search));
}

export async function runSelectCell(j: SelectCellJob): Promise<void> {
  for (let seed = 0; seed < j.seeds; seed++) {
    const dir = path.join(j.out, `select-s${seed}`);
    if (selectFinished(dir)) continue;
    // select cannot resume (it refuses a folder that holds a selection): a stopped search starts again.
    fs.rmSync(dir, { recursive: true, force: true });
    await select({
      data: j.data, backbone: j.backbone, shots: j.shots, valFraction: j.valFraction, testFraction: j.testFraction, seed,
      population: j.settings.population, generations: j.settings.generations, epochs: j.settings.epochs, threads: j.threads, workers: 0, out: dir,
    });
  }
}

export interface TransferOptions {
  profile: Profile;
  out: string;
  /** Processes training at once (default 2). */
  jobs?: number;
  /** libtorch threads per process (default 1). */
  threads?: number;
  /** false: only rebuild the summary from the runs that exist. */
  train?: boolean;
  command?: string;
  log?: (line: string) => void;
}

export interface CellPlan extends CellSpec {
  dataName: string;
  trainSize: number | null;
  epochs: number | null;
  skipped: string | null;
}

export interface TrialRecord { method: string; trial: number; lr: number; gateLr: number | null; options?: Record<string, unknown>; valAcc: number | null; valLoss: number | null; error: string | null }

export interface TransferSummary {
  format: 'adafilter-transfer';
  version: 1;
  profile: string;
  kind: 'benchmark' | 'variants';
  description: string;
  command: string;
  startedAt: string;
  finishedAt: string;
  wallSeconds: number;
  machine: ReturnType<typeof machineInfo>;
  settings: { seeds: number; batch: number; epochImages: number; minEpochs: number; maxEpochs: number; threads: number; jobs: number; augment: true; schedule: 'cosine' };
  search: { backbone: string; cell: CellPlan; trials: TrialRecord[] }[];
  /** Per backbone, per method: the setting every cell of that backbone used. */
  chosen: Record<string, Record<string, Trial & { from: 'search' | 'fixed' }>>;
  /** Where the fixed settings come from, when not plain defaults. */
  fixedFrom?: string;
  cells: CellPlan[];
  runs: RunRow[];
  tables: {
    cells: Record<string, MethodCellRow[]>;
    datasets: ReturnType<typeof datasetTable>;
  };
  intervals: Record<string, BootstrapInterval>;
  gateFractions: { overall: ReturnType<typeof layerFractions>; byCell: Record<string, ReturnType<typeof layerFractions>> };
  missing: { cell: string; method: string; seeds: number[]; reason: string }[];
  failures: { job: string; error: string }[];
  cuts: string[];
  /** With more than one backbone: per backbone, each method's mean test accuracy (percent) over that backbone's cells. */
  byBackbone?: Record<string, Record<string, number>>;
  /** Per cell with a reduced-precision twin (CellSpec.fp32Cell) and method: both precisions side by side. */
  precision?: PrecisionRow[];
  /** The select cells' search size. */
  select?: SelectSettings;
  /** The defaults profile (issue 14): grid, default and --auto per cell and method, and the gap table. */
  defaults?: DefaultsReport;
}

export interface RunRow extends RunRecord {
  bestEpoch: number;
  epochs: number;
  trainSeconds: number;
  /** What the row cost: training seconds, or for select the whole search (features + candidates + final run). */
  costSeconds: number;
  /** Training seconds per optimizer step (null where run.json lacks the step count: older runs). */
  secondsPerStep: number | null;
  lr: number;
  gateLr: number | null;
  precision: string;
  gates: ReturnType<typeof gateSummary>;
  /** select only: its seconds by step (select.json) and the distinct genomes it scored. */
  selectCost?: { features: number; search: number; perCandidate: number; final: number; evaluated: number };
}

export interface PrecisionSide { cell: string; precision: string; n: number; mean: number; std: number; trainSeconds: number }
export interface PrecisionRow {
  method: string;
  fp32: PrecisionSide;
  other: PrecisionSide;
  /** other − fp32 mean test accuracy, points. */
  difference: number;
  /** |difference| ≤ fp32's seed-to-seed sample sd. */
  withinFp32Sd: boolean;
}

function gateSummary(r: RunResult) {
  if (!r.gates) return null;
  return {
    fraction: r.gates.fraction,
    layers: r.gates.layers.map((l) => ({ name: l.name, filters: l.filters, fraction: l.fraction, filtersVarying: l.filtersVarying, exampleStd: l.exampleStd })),
  };
}

const cellDir = (out: string, cell: string) => path.join(out, 'cells', cell);
const trialDir = (out: string, backbone: string, method: string, k: number) => path.join(out, 'search', backbone, `${method}-t${k}`);

/** Opens the cell's data once (checking it) to size the epochs; marks it skipped when its backbone is not available. */
async function planCell(cell: CellSpec, p: Profile, out: string, backboneOk: (b: string) => string | null): Promise<CellPlan> {
  const dataName = dataNameOf(cell, out);
  const skipped = backboneOk(cell.backbone);
  if (skipped) return { ...cell, dataName, trainSize: null, epochs: null, skipped };
  if (cell.subset) await materialiseSubset(cell.subset, dataName);
  const ds = await openDataset(dataName, { seed: 0, shots: cell.shots, val: cell.valFraction, test: cell.testFraction });
  const trainSize = ds.splits.train.length;
  return { ...cell, dataName, trainSize, epochs: cell.fixedEpochs ?? epochsFor(p, trainSize), skipped: null };
}

function compareOptions(p: Profile, cell: CellPlan, method: string, t: Trial, seeds: number, out: string, threads: number,
  methodOptions: Record<string, unknown> = cell.methodOptions?.[method] ?? {}): Job['options'] {
  return {
    ...(cell.precision ? { precision: cell.precision } : {}),
    backbone: cell.backbone, data: cell.dataName, shots: cell.shots, inputSize: cell.inputSize,
    valFraction: cell.valFraction, testFraction: cell.testFraction,
    epochs: cell.epochs!, batch: p.batch, lr: t.lr, gateLr: t.gateLr, augment: true, schedule: 'cosine',
    threads, workers: 0, seeds, out, methods: [method], methodOptionsByMethod: { [method]: { ...methodOptions, ...t.options } },
  };
}

/** Runs jobs on `n` worker processes (or in this process for n = 1), respecting `after`. */
export async function runPool(jobs: Job[], n: number, log: (s: string) => void, prepare: (j: Job) => Job): Promise<Map<string, string | null>> {
  const done = new Map<string, string | null>(); // id → error or null
  const pending = [...jobs];
  const total = jobs.length;
  const t0 = Date.now();
  const ready = () => pending.findIndex((j) => (j.after ?? []).every((a) => done.has(a) || !jobs.some((x) => x.id === a)));
  const finish = (j: Job, error: string | null, secs: number) => {
    done.set(j.id, error);
    log(`[${done.size}/${total}] ${j.id} ${error ? `FAILED: ${error}` : 'done'} (${secs.toFixed(0)} s; ${((Date.now() - t0) / 60000).toFixed(1)} min so far)`);
  };
  if (n <= 1) {
    while (pending.length) {
      const i = ready();
      const j = prepare(pending.splice(i < 0 ? 0 : i, 1)[0]);
      log(`start ${j.id}`);
      const s = Date.now();
      try { await runJob(j); finish(j, null, (Date.now() - s) / 1000); } catch (e) { finish(j, (e as Error).message, (Date.now() - s) / 1000); }
    }
    return done;
  }
  const workerFile = path.join(__dirname, 'transfer-worker.js');
  await new Promise<void>((resolve) => {
    let running = 0;
    const spawn = (): ChildProcess => fork(workerFile, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const feed = (w: ChildProcess) => {
      if (!pending.length) {
        w.disconnect();
        if (running === 0) resolve();
        return;
      }
      const i = ready();
      if (i < 0) { setTimeout(() => feed(w), 500); return; }
      const j = prepare(pending.splice(i, 1)[0]);
      running++;
      const s = Date.now();
      log(`start ${j.id}`);
      let settled = false;
      const settle = (error: string | null, next: ChildProcess | null) => {
        if (settled) return;
        settled = true;
        w.removeAllListeners('message'); w.removeAllListeners('exit');
        running--;
        finish(j, error, (Date.now() - s) / 1000);
        if (next) feed(next);
        else if (!pending.length && running === 0) resolve();
      };
      w.once('message', (m: { ok: boolean; error?: string }) => settle(m.ok ? null : m.error ?? 'failed', w));
      // A native crash takes the worker down: the job is failed, a fresh worker takes its place.
      w.once('exit', (code, sig) => settle(`worker exited (${sig ?? code})`, pending.length ? spawn() : null));
      w.send({ job: j });
    };
    for (let k = 0; k < Math.min(n, pending.length); k++) feed(spawn());
    if (!pending.length) resolve();
  });
  return done;
}

function chooseTrial(out: string, backbone: string, method: string, trials: Trial[]): { best: number | null; records: TrialRecord[] } {
  const records: TrialRecord[] = trials.map((t, k) => {
    const r = readResult(path.join(trialDir(out, backbone, method, k), `${method}-s0`));
    return { method, trial: k, lr: t.lr, gateLr: t.gateLr ?? null, ...(t.options ? { options: t.options } : {}), valAcc: r?.val.acc ?? null, valLoss: r?.val.loss ?? null, error: r ? null : 'no result' };
  });
  let best: number | null = null;
  for (const r of records) {
    if (r.valAcc === null) continue;
    // Validation accuracy, then validation loss; the earlier trial wins an exact tie.
    if (best === null || r.valAcc > records[best].valAcc! || (r.valAcc === records[best].valAcc && r.valLoss! < records[best].valLoss!)) best = r.trial;
  }
  return { best, records };
}

export async function runTransfer(o: TransferOptions): Promise<TransferSummary> {
  const p = o.profile, out = path.resolve(o.out), log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const jobsN = o.jobs ?? 2, threads = o.threads ?? 1, train = o.train ?? true;
  const startedAt = new Date();
  fs.mkdirSync(out, { recursive: true });
  const backboneCache = new Map<string, string | null>();
  const backboneOk = (b: string) => {
    if (!backboneCache.has(b)) {
      try { openBackbone(b, 2).model.dispose(); backboneCache.set(b, null); } catch (e) {
        backboneCache.set(b, `backbone '${b}' not available here: ${(e as Error).message}`);
      }
    }
    return backboneCache.get(b)!;
  };
  const failures: { job: string; error: string }[] = [];

  if (p.defaults) {
    // Issue 14's measurement: no method comparison, its own runs and report (transfer-defaults.ts).
    const plans: DefaultsCellPlan[] = [];
    const d = p.defaults;
    for (const c of d.only ? d.only.map((id) => d.cells.find((x) => x.id === id)!) : d.cells) plans.push(await planDefaultsCell(d, c, out));
    const jobs: Job[] = defaultsJobs(p.defaults, plans, p.seeds, threads, out).map((j) => ({ ...j, kind: 'cell' as const }));
    if (train) for (const [id, e] of await runPool(jobs, jobsN, log, (j) => j)) if (e) failures.push({ job: id, error: e });
    const summary = summarise(p, out, [], {}, [], failures, { command: o.command ?? '', startedAt, threads, jobs: jobsN });
    summary.defaults = defaultsReport(p.defaults, plans, p.seeds, out);
    if (!train) keepTrainingFacts(summary, out);
    writeJsonAtomic(path.join(out, `transfer-${p.name}.json`), summary);
    writeFileAtomic(path.join(out, `results-${p.name}.md`), renderResults({ [p.name]: summary }));
    return summary;
  }

  // 1. Hyper-parameters: the same number of trials per method, judged by validation accuracy (seed 0 of a dev cell), per backbone.
  const chosen: TransferSummary['chosen'] = {};
  const search: TransferSummary['search'] = [];
  const searchJobs: Job[] = [];
  const devs: CellPlan[] = [];
  for (const sp of p.search) {
    const dev = await planCell(sp.cell, p, out, backboneOk);
    devs.push(dev);
    if (dev.skipped) continue;
    for (const m of p.methodOrder.filter((x) => dev.methods.includes(x))) {
      sp.grids[m].forEach((t, k) => searchJobs.push({
        id: `search/${dev.backbone}/${m}-t${k}`, kind: 'search', cell: dev.id, method: m,
        options: compareOptions(p, dev, m, t, 1, trialDir(out, dev.backbone, m, k), threads),
      }));
    }
  }
  if (train && searchJobs.length) for (const [id, e] of await runPool(searchJobs, jobsN, log, (j) => j)) if (e) failures.push({ job: id, error: e });
  p.search.forEach((sp, i) => {
    const dev = devs[i];
    const trials: TrialRecord[] = [];
    chosen[dev.backbone] = {};
    for (const m of dev.methods) {
      const { best, records } = chooseTrial(out, dev.backbone, m, sp.grids[m]);
      trials.push(...records);
      chosen[dev.backbone][m] = best === null ? { ...p.fixed[m], from: 'fixed' } : { ...sp.grids[m][best], from: 'search' };
    }
    search.push({ backbone: dev.backbone, cell: dev, trials });
  });
  for (const c of p.cells) {
    chosen[c.backbone] ??= {};
    for (const m of c.methods.filter((x) => !SEARCH_METHODS.has(x))) chosen[c.backbone][m] ??= { ...(c.trialByMethod?.[m] ?? p.fixed[m]), from: 'fixed' };
  }
  if (p.search.length && train && Object.values(chosen).some((b) => Object.values(b).some((c) => c.from === 'fixed'))) {
    log('no search result for some backbone/method: using the fixed defaults for them (see the summary)');
  }

  // 2. The cells, most important comparison first: method order, then cell order.
  const cells: CellPlan[] = [];
  for (const c of p.cells) cells.push(await planCell(c, p, out, backboneOk));
  for (const c of cells) if (c.skipped) log(`skipping ${c.id}: ${c.skipped}`);
  const jobs: Job[] = [];
  // Methods that pair (p.interleave) run cell by cell, so a stopped benchmark still has whole pairs.
  const order: [string, CellPlan][] = [];
  for (const m of p.methodOrder) {
    if (p.interleave?.includes(m)) {
      if (m !== p.methodOrder.find((x) => p.interleave!.includes(x))) continue;
      for (const c of cells) for (const mm of p.methodOrder.filter((x) => p.interleave!.includes(x))) order.push([mm, c]);
    } else {
      for (const c of cells) order.push([m, c]);
    }
  }
  {
    for (const [m, c] of order) {
      if (c.skipped || c.train === false || !c.methods.includes(m)) continue;
      if (SEARCH_METHODS.has(m)) {
        if (c.inputSize) throw new Error(`${c.id}: ${m} runs at the backbone's own input size; the cell asks for ${c.inputSize} px`);
        jobs.push({
          id: `cell/${c.id}/${m}`, kind: 'cell', cell: c.id, method: m,
          select: { data: c.dataName, backbone: c.backbone, shots: c.shots, valFraction: c.valFraction, testFraction: c.testFraction,
            seeds: seedsOf(p, c, m), threads, out: cellDir(out, c.id), settings: p.select ?? SELECT_DEFAULTS },
        });
        continue;
      }
      jobs.push({
        id: `cell/${c.id}/${m}`, kind: 'cell', cell: c.id, method: m,
        options: compareOptions(p, c, m, c.trialByMethod?.[m] ?? c.trial ?? chosen[c.backbone][m], seedsOf(p, c, m), cellDir(out, c.id), threads),
        after: m === 'random-filter' && c.methods.includes('adafilter') ? [`cell/${c.id}/adafilter`] : undefined,
      });
    }
  }
  // random-filter draws gates at the per-layer fractions AdaFilter learned in the same cell (mean over its seeds).
  const prepare = (j: Job): Job => {
    if (j.method !== 'random-filter' || !j.options) return j;
    const cell = cells.find((c) => c.id === j.cell)!;
    const fr = layerFractions(readRuns(out, cell, 'adafilter', seedsOf(p, cell, 'adafilter')).map((r) => r.gates!).filter(Boolean));
    const opts = { ...(j.options.methodOptionsByMethod?.['random-filter'] ?? {}), ...(fr ? { randomFraction: fr.layers.map((l) => l.fraction) } : {}) };
    return { ...j, options: { ...j.options, methodOptionsByMethod: { 'random-filter': opts } } };
  };
  if (train) for (const [id, e] of await runPool(jobs, jobsN, log, prepare)) if (e) failures.push({ job: id, error: e });

  // 3. Read back everything that finished.
  const summary = summarise(p, out, cells, chosen, search, failures, {
    command: o.command ?? '', startedAt, threads, jobs: jobsN,
  });
  if (!train) keepTrainingFacts(summary, out);
  writeJsonAtomic(path.join(out, `transfer-${p.name}.json`), summary);
  writeFileAtomic(path.join(out, `results-${p.name}.md`), renderResults({ [p.name]: summary }));
  return summary;
}

/**
 * A rebuilt summary describes the training invocation, not the rebuild: its command, times and
 * process count come from the summary that invocation wrote (older versions called it transfer.json).
 */
function keepTrainingFacts(s: TransferSummary, out: string): void {
  for (const f of [`transfer-${s.profile}.json`, 'transfer.json']) {
    const file = path.join(out, f);
    if (!fs.existsSync(file)) continue;
    const prev = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<TransferSummary>;
    if (prev.format !== 'adafilter-transfer' || prev.profile !== s.profile || !prev.command) continue;
    s.command = prev.command; s.startedAt = prev.startedAt!; s.finishedAt = prev.finishedAt!; s.wallSeconds = prev.wallSeconds!;
    s.settings.jobs = prev.settings?.jobs ?? s.settings.jobs; s.settings.threads = prev.settings?.threads ?? s.settings.threads;
    return;
  }
}

function readRuns(out: string, cell: CellPlan, method: string, seeds: number): RunResult[] {
  const rs: RunResult[] = [];
  for (let s = 0; s < seeds; s++) {
    const r = readResult(path.join(cellDir(out, cell.id), `${method}-s${s}`));
    if (r) rs.push(r);
  }
  return rs;
}

function summarise(p: Profile, out: string, cells: CellPlan[], chosen: TransferSummary['chosen'], search: TransferSummary['search'],
  failures: TransferSummary['failures'], meta: { command: string; startedAt: Date; threads: number; jobs: number }): TransferSummary {
  const runs: TransferSummary['runs'] = [];
  const missing: TransferSummary['missing'] = [];
  const failed = new Map(failures.map((f) => [f.job, f.error]));
  for (const c of cells) {
    for (const m of c.methods) {
      const have: number[] = [];
      const n = seedsOf(p, c, m);
      for (let s = 0; s < n; s++) {
        const dir = path.join(cellDir(out, c.id), `${m}-s${s}`);
        const search = SEARCH_METHODS.has(m) ? readSearchCost(dir) : undefined;
        const r = search === null ? null : readResult(dir);
        if (!r) continue;
        have.push(s);
        const cfg = readRunConfig(dir);
        runs.push({
          cell: c.id, group: c.group, method: m, seed: s, valAcc: r.val.acc, testAcc: r.test.acc, bestEpoch: r.bestEpoch, epochs: r.epochs,
          trainSeconds: r.trainSeconds, costSeconds: search ? search.features + search.search + search.final : r.trainSeconds,
          secondsPerStep: cfg.steps ? r.trainSeconds / cfg.steps : null,
          lr: cfg.lr, gateLr: GATED.has(m) ? cfg.gateLr : null, precision: cfg.precision ?? 'fp32', gates: gateSummary(r),
          ...(search ? { selectCost: search } : {}),
        });
      }
      const lacking = Array.from({ length: n }, (_, s) => s).filter((s) => !have.includes(s));
      if (lacking.length) {
        missing.push({ cell: c.id, method: m, seeds: lacking, reason: c.skipped ?? failed.get(`cell/${c.id}/${m}`) ?? 'not run (stopped before it)' });
      }
    }
  }
  // A cell with a baselineCell is compared with that cell's finetune runs (same data, same seeds).
  const tableRuns: RunRecord[] = [...runs];
  for (const c of cells) {
    if (!c.baselineCell) continue;
    for (const r of runs.filter((x) => x.cell === c.baselineCell && x.method === 'finetune')) tableRuns.push({ ...r, cell: c.id, group: c.group });
  }
  const cellRows: Record<string, MethodCellRow[]> = {};
  const groupOf = new Map<string, string>();
  const allMethods = p.methodOrder;
  for (const c of cells) {
    const rs = tableRuns.filter((r) => r.cell === c.id);
    if (!rs.some((r) => c.methods.includes(r.method))) continue;
    cellRows[c.id] = cellTable(rs, allMethods.filter((m) => c.methods.includes(m) || (c.baselineCell && m === 'finetune')));
    groupOf.set(c.id, c.group);
  }
  const datasets = datasetTable(new Map(Object.entries(cellRows)), groupOf, allMethods);
  const intervals: Record<string, BootstrapInterval> = {};
  for (const m of allMethods) {
    if (m === 'finetune') continue;
    const pairs = errorPairs(tableRuns, m);
    if (!pairs.length) continue;
    // Variants are not datasets: one interval each instead of an average over them.
    if (p.kind === 'variants') for (const g of new Set(pairs.map((x) => x.group))) intervals[`${m} @ ${g}`] = pairedBootstrap(pairs.filter((x) => x.group === g), BOOTSTRAP);
    else intervals[m] = pairedBootstrap(pairs, BOOTSTRAP);
  }
  // The headline mixes backbones; each backbone's own answer is worth seeing apart.
  const backbones = [...new Set(cells.filter((c) => !c.skipped).map((c) => c.backbone))];
  const byBackbone: Record<string, Record<string, number>> = {};
  if (p.kind !== 'variants' && backbones.length > 1) {
    for (const b of backbones) {
      const on = new Set(cells.filter((c) => c.backbone === b).map((c) => c.id));
      const pairs = errorPairs(tableRuns, 'adafilter').filter((x) => on.has(x.cell));
      if (pairs.length) intervals[`adafilter (${b} backbone only)`] = pairedBootstrap(pairs, BOOTSTRAP);
      // Mean test accuracy per method over the backbone's cells that have that method's runs (linear-probe: feature quality).
      const means: Record<string, number> = {};
      for (const m of allMethods) {
        const perCell = [...on].map((id) => cellRows[id]?.find((r) => r.method === m)?.mean).filter((x): x is number => typeof x === 'number');
        if (perCell.length === on.size) means[m] = perCell.reduce((a, x) => a + x, 0) / perCell.length;
      }
      byBackbone[b] = means;
    }
  }
  const precision = precisionRows(cells, cellRows, runs);
  const adaGates = runs.filter((r) => r.method === 'adafilter' && r.gates);
  const byCell: Record<string, ReturnType<typeof layerFractions>> = {};
  for (const c of cells) {
    const g = adaGates.filter((r) => r.cell === c.id).map((r) => r.gates!);
    if (g.length) byCell[c.id] = layerFractions(g);
  }
  // One shipped backbone (the default if the profile uses it) with default options only: other
  // backbones have other filters, other gateLayers settings gate other layers.
  const main = SHIPPED.map((b) => b.name).find((b) => cells.some((c) => c.backbone === b));
  const defaultCells = new Set(cells.filter((c) => c.backbone === main && !c.methodOptions?.adafilter).map((c) => c.id));
  const overall = layerFractions(adaGates.filter((r) => defaultCells.has(r.cell)).map((r) => r.gates!));
  const finishedAt = new Date();
  return {
    format: 'adafilter-transfer', version: 1, profile: p.name, kind: p.kind ?? 'benchmark', description: p.description, command: meta.command,
    startedAt: meta.startedAt.toISOString(), finishedAt: finishedAt.toISOString(),
    wallSeconds: (finishedAt.getTime() - meta.startedAt.getTime()) / 1000, machine: machineInfo(),
    settings: { seeds: p.seeds, batch: p.batch, epochImages: p.epochImages, minEpochs: p.minEpochs, maxEpochs: p.maxEpochs, threads: meta.threads, jobs: meta.jobs, augment: true, schedule: 'cosine' },
    search, chosen, fixedFrom: p.fixedFrom, cells, runs, tables: { cells: cellRows, datasets }, intervals,
    gateFractions: { overall, byCell }, missing, failures, cuts: p.cuts,
    ...(Object.keys(byBackbone).length ? { byBackbone } : {}),
    ...(precision.length ? { precision } : {}),
    ...(cells.some((c) => c.methods.some((m) => SEARCH_METHODS.has(m))) ? { select: p.select ?? SELECT_DEFAULTS } : {}),
  };
}

/** A select seed's seconds by step from its select.json; null while the search has not finished. */
function readSearchCost(dir: string): RunRow['selectCost'] | null {
  const file = path.join(dir, SELECT_FILES.search);
  if (!fs.existsSync(file)) return null;
  const j = JSON.parse(fs.readFileSync(file, 'utf8')) as { seconds: { features: number; search: number; perCandidate: number; final: number }; evaluated: number };
  return { ...j.seconds, evaluated: j.evaluated };
}

/** Each reduced-precision cell against its fp32 twin, per method both have: means and sds in percent, mean training seconds. */
function precisionRows(cells: CellPlan[], cellRows: Record<string, MethodCellRow[]>, runs: RunRow[]): PrecisionRow[] {
  const rows: PrecisionRow[] = [];
  const side = (cell: CellPlan, r: MethodCellRow): PrecisionSide => {
    const secs = runs.filter((x) => x.cell === cell.id && x.method === r.method).map((x) => x.trainSeconds);
    return { cell: cell.id, precision: cell.precision ?? 'fp32', n: r.n, mean: r.mean, std: r.std, trainSeconds: secs.reduce((a, x) => a + x, 0) / secs.length };
  };
  for (const c of cells) {
    const base = c.fp32Cell ? cells.find((x) => x.id === c.fp32Cell) : undefined;
    if (!base) continue;
    for (const r of cellRows[c.id] ?? []) {
      const b = cellRows[base.id]?.find((x) => x.method === r.method);
      if (!b) continue;
      const difference = r.mean - b.mean;
      rows.push({ method: r.method, fp32: side(base, b), other: side(c, r), difference, withinFp32Sd: Math.abs(difference) <= b.std });
    }
  }
  return rows;
}

/**
 * Copies the summary to DOCS/results/transfer-PROFILE.json and regenerates DOCS/results.md from
 * every summary there, keeping the hand-written discussion.
 */
export function publishResults(summary: TransferSummary, docsDir: string, log: (line: string) => void = () => {}): string {
  const dir = path.join(docsDir, 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `transfer-${summary.profile}.json`);
  if (summary.defaults && fs.existsSync(file)) {
    // The defaults measurement spans sittings: the cells published before that this run lacks stay.
    const published = (JSON.parse(fs.readFileSync(file, 'utf8')) as TransferSummary).defaults;
    const { report, kept, dropped } = mergeDefaults(published, summary.defaults);
    if (kept.length) log(`kept the published cells this run lacks: ${kept.join(', ')}`);
    if (dropped.length) log(`dropped published cells measured on other weights of their backbone: ${dropped.join(', ')}`);
    summary = { ...summary, defaults: report };
  }
  writeJsonAtomic(file, summary);
  const all: Record<string, TransferSummary> = {};
  for (const f of fs.readdirSync(dir).filter((x) => /^transfer-.*\.json$/.test(x)).sort()) {
    const s = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as TransferSummary;
    if (s.format === 'adafilter-transfer') all[s.profile] = s;
  }
  const md = path.join(docsDir, 'results.md');
  const existing = fs.existsSync(md) ? fs.readFileSync(md, 'utf8') : null;
  writeFileAtomic(md, renderResults(all, keepDiscussion(existing)));
  return md;
}
