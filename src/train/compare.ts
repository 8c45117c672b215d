/**
 * `compare`: several methods on the same data, each seed giving every method identical splits,
 * few-shot samples, data order, augmentation and budget — only the method differs. Runs land in
 * one folder (METHOD-sSEED/) beside compare.json; finished runs are reused, so an interrupted
 * comparison continues where it stopped.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import { getMethod } from '../methods/registry';
import { writeJsonAtomic } from '../io/atomic';
import { writesOutputs } from './data-parallel';
import { fineTune } from './trainer';
import { TrainOptions } from './options';
import { isRunFolder, readResult, RunResult } from './run-folder';

export interface CompareOptions extends Omit<TrainOptions, 'method' | 'seed' | 'out' | 'resume'> {
  methods: string[];
  /** Seeds 0..seeds-1 (default 3). */
  seeds?: number;
  /** Default runs/compare-<data>. */
  out?: string;
  /** Per-method options, e.g. { adafilter: { tau: 0.5 } }. */
  methodOptionsByMethod?: Record<string, Record<string, unknown>>;
  /** Called before each run starts. */
  onRun?: (method: string, seed: number, index: number, total: number) => void;
  /** Per-method learning rates (and budget, as --steps) a validation search chose (search.ts autoCompare); recorded in compare.json. */
  searched?: Record<string, { lr: number; gateLr?: number; steps?: number; search: string }>;
}

export interface CompareRow {
  method: string;
  n: number;
  /** Test accuracy over seeds, in [0, 1]. */
  mean: number;
  std: number;
  /** Error change against finetune, in percentage points (negative: fewer errors); null without finetune. */
  errorChange: number | null;
}

export interface Comparison {
  version: 1;
  backbone: string;
  data: string;
  methods: string[];
  seeds: number[];
  runs: { method: string; seed: number; dir: string; valAcc: number; testAcc: number }[];
  summary: CompareRow[];
  /** With --auto: each method's searched settings and where its search.json is. */
  searched?: CompareOptions['searched'];
}

/** Sample standard deviation (n − 1), 0 for a single value. */
export function sampleStd(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

export function summarise(runs: Comparison['runs'], methods: string[]): CompareRow[] {
  const rows = methods.map((method) => {
    const accs = runs.filter((r) => r.method === method).map((r) => r.testAcc);
    return { method, n: accs.length, mean: accs.reduce((a, b) => a + b, 0) / accs.length, std: sampleStd(accs), errorChange: null as number | null };
  });
  const ft = rows.find((r) => r.method === 'finetune');
  if (ft) for (const r of rows) r.errorChange = 100 * ((1 - r.mean) - (1 - ft.mean));
  return rows;
}

/** The comparison's folder: --out, or runs/compare-<data>. */
export function compareDir(o: Pick<CompareOptions, 'out' | 'data'>): string {
  return path.resolve(o.out ?? `runs/compare-${o.data.replace(/[^A-Za-z0-9._-]+/g, '_')}`);
}

/** A method's options in a comparison: the shared ones only when it is the only method, then its own. */
export function methodOptionsFor(o: Pick<CompareOptions, 'methods' | 'methodOptions' | 'methodOptionsByMethod'>, method: string): Record<string, unknown> {
  return { ...(o.methodOptions && o.methods.length === 1 ? o.methodOptions : {}), ...(o.methodOptionsByMethod?.[method] ?? {}) };
}

export async function compare(o: CompareOptions): Promise<Comparison> {
  if (!o.methods.length) throw new InputError('compare: no methods given');
  const dup = o.methods.find((m, i) => o.methods.indexOf(m) !== i);
  if (dup) throw new InputError(`compare: method '${dup}' given twice`);
  for (const m of o.methods) getMethod(m);
  const nSeeds = o.seeds ?? 3;
  if (!Number.isInteger(nSeeds) || nSeeds < 1) throw new InputError(`seeds: expected a positive integer, got ${nSeeds}`);
  const out = compareDir(o);
  const seeds = Array.from({ length: nSeeds }, (_, i) => i);
  const runs: Comparison['runs'] = [];
  const total = seeds.length * o.methods.length;
  const { methods: _m, seeds: _s, methodOptionsByMethod, onRun, searched, ...common } = o;
  for (const seed of seeds) {
    for (const method of o.methods) {
      const dir = path.join(out, `${method}-s${seed}`);
      onRun?.(method, seed, runs.length, total);
      let r: RunResult | null = isRunFolder(dir) ? readResult(dir) : null;
      if (!r) {
        r = await fineTune({
          ...common, method, seed, out: dir, resume: isRunFolder(dir),
          ...(searched?.[method] ? searchedSettings(searched[method]) : {}),
          methodOptions: methodOptionsFor(o, method),
        });
      }
      runs.push({ method, seed, dir: path.relative(out, dir), valAcc: r.val.acc, testAcc: r.test.acc });
    }
  }
  const result: Comparison = {
    version: 1, backbone: o.backbone ?? 'default', data: o.data, methods: o.methods, seeds, runs, summary: summarise(runs, o.methods), ...(searched ? { searched } : {}),
  };
  if (writesOutputs()) { // a data-parallel job's rank 0
    fs.mkdirSync(out, { recursive: true });
    writeJsonAtomic(path.join(out, 'compare.json'), result);
  }
  return result;
}

/** The comparison table as text: mean ± std test accuracy and the error change against finetune. */
export function formatComparison(c: Comparison): string {
  const lines = [`${c.data} on ${c.backbone}, ${c.seeds.length} seed(s): test accuracy`, ''];
  const w = Math.max(8, ...c.summary.map((r) => r.method.length));
  lines.push(`${'method'.padEnd(w)}  ${'accuracy (%)'.padStart(16)}  ${'error vs finetune'.padStart(17)}`);
  for (const r of c.summary) {
    const acc = `${(100 * r.mean).toFixed(2)} ± ${(100 * r.std).toFixed(2)}`;
    const d = r.errorChange === null ? '' : r.method === 'finetune' ? '—' : `${r.errorChange > 0 ? '+' : ''}${r.errorChange.toFixed(2)} pts`;
    lines.push(`${r.method.padEnd(w)}  ${acc.padStart(16)}  ${d.padStart(17)}`);
  }
  return lines.join('\n');
}

/**
 * A run's options from a search's settings (a trial, or what it chose): its learning rates, and its
 * steps in place of the run's budget flags where it has them (absent or null: the run's own budget).
 */
export function searchedSettings(s: { lr: number; gateLr?: number; steps?: number | null }): Partial<TrainOptions> {
  return { lr: s.lr, ...(s.gateLr !== undefined ? { gateLr: s.gateLr } : {}), ...(s.steps != null ? { steps: s.steps, epochs: undefined } : {}) };
}
