/**
 * What a report shows, computed once from the runs so the HTML, the Markdown and the charts cannot
 * disagree: runs grouped by method (and by data set and backbone when the inputs mix them), test
 * accuracy mean ± std over seeds, error change vs finetune, gate statistics averaged over seeds.
 */
import * as path from 'node:path';
import type { Inputs, Run } from './read-runs';

export interface Group {
  /** Unique within the report: the method, plus data set and backbone when the inputs mix several. */
  label: string;
  method: string;
  data: string;
  backbone: string;
  runs: Run[];
  /** Runs with a result.json; the statistics below are over these. */
  finished: Run[];
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1); 0 for a single run. */
  std: number;
  valMean: number;
  /** Percentage points of test error vs finetune on the same data and backbone; negative = fewer errors. null without a finetune group. */
  errorChange: number | null;
  trainableParams: number | null;
  trainSeconds: number | null;
  gates: GroupGates | null;
}

export interface GroupGates {
  /** Runs whose statistics were averaged. */
  runs: number;
  /** Overall fraction of gates choosing the fine-tuned copy, mean over runs. */
  fraction: number;
  layers: { index: number; name: string; filters: number; fraction: number; exampleStd: number; filtersVarying: number }[];
  classes: string[];
  /** Mean over runs of the fraction per layer and class; NaN where no run saw that class. */
  perClass: { layer: string; index: number; cls: string; fraction: number }[];
}

export interface ReportModel {
  groups: Group[];
  runs: Run[];
  /** Distinct (data, backbone) pairs, in order of appearance. */
  settings: { data: string; backbone: string }[];
  /** The folders named on the command line, and the comparisons among them. */
  inputs: string[];
  compares: string[];
}

export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

export function sampleStd(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) * (x - m), 0) / (xs.length - 1));
}

/**
 * perClass maps (test accuracy, gate fractions) are keyed by class name, as the trainer writes
 * them; GateStatsCollector itself keys by class index, so a key that is not a class name but a
 * valid index is read as one (never the other way round: digit names, as in MNIST, stay names).
 */
export function className(key: string, classes: string[]): string {
  if (classes.includes(key)) return key;
  return /^\d+$/.test(key) && Number(key) < classes.length ? classes[Number(key)] : key;
}

function groupGates(runs: Run[]): GroupGates | null {
  const withGates = runs.filter((r) => r.result?.gates);
  if (withGates.length === 0) return null;
  const first = withGates[0].result!.gates!;
  // Matched by name so runs from differently patched code do not average unrelated layers.
  const names = first.layers.map((l) => l.name);
  const classes: string[] = [];
  const classSeen = new Set<string>();
  for (const c of withGates[0].config.classes) { classSeen.add(c); classes.push(c); }
  const layers = names.map((name, index) => {
    const ls = withGates.map((r) => r.result!.gates!.layers.find((l) => l.name === name)).filter((l) => l !== undefined);
    return {
      index, name, filters: ls[0].filters,
      fraction: mean(ls.map((l) => l.fraction)),
      exampleStd: mean(ls.map((l) => l.exampleStd)),
      filtersVarying: mean(ls.map((l) => l.filtersVarying)),
    };
  });
  const perClass: GroupGates['perClass'] = [];
  for (const [index, name] of names.entries()) {
    const sums = new Map<string, number[]>();
    for (const r of withGates) {
      const l = r.result!.gates!.layers.find((x) => x.name === name);
      if (!l) continue;
      for (const [k, v] of Object.entries(l.perClass)) {
        const c = className(k, r.config.classes);
        if (!classSeen.has(c)) { classSeen.add(c); classes.push(c); }
        if (!sums.has(c)) sums.set(c, []);
        if (Number.isFinite(v)) sums.get(c)!.push(v);
      }
    }
    for (const c of classes) perClass.push({ layer: name, index, cls: c, fraction: mean(sums.get(c) ?? []) });
  }
  return { runs: withGates.length, fraction: mean(withGates.map((r) => r.result!.gates!.fraction)), layers, classes, perClass };
}

export function buildModel(inputs: Inputs, inputDirs: string[], methodOrder: string[] = []): ReportModel {
  const settings: ReportModel['settings'] = [];
  for (const r of inputs.runs) {
    if (!settings.some((s) => s.data === r.config.data && s.backbone === r.config.backbone)) settings.push({ data: r.config.data, backbone: r.config.backbone });
  }
  const mixed = settings.length > 1;
  const order = [...methodOrder];
  for (const r of inputs.runs) if (!order.includes(r.config.method)) order.push(r.config.method);
  const groups: Group[] = [];
  for (const s of settings) {
    for (const method of order) {
      const runs = inputs.runs.filter((r) => r.config.method === method && r.config.data === s.data && r.config.backbone === s.backbone)
        .sort((a, b) => a.config.seed - b.config.seed);
      if (runs.length === 0) continue;
      const finished = runs.filter((r) => r.result);
      const accs = finished.map((r) => r.result!.test.acc);
      groups.push({
        label: mixed ? `${method} (${s.data}, ${s.backbone})` : method,
        method, data: s.data, backbone: s.backbone, runs, finished,
        n: finished.length, mean: mean(accs), std: sampleStd(accs),
        valMean: mean(finished.map((r) => r.result!.val.acc)),
        errorChange: null,
        trainableParams: finished.length ? finished[0].result!.params.trainable : null,
        trainSeconds: finished.length ? mean(finished.map((r) => r.result!.trainSeconds)) : null,
        gates: groupGates(finished),
      });
    }
  }
  for (const g of groups) {
    const ft = groups.find((x) => x.method === 'finetune' && x.data === g.data && x.backbone === g.backbone);
    // Error = 1 − accuracy, so the change in error is the finetune accuracy minus this one.
    if (ft && ft.n > 0 && g.n > 0) g.errorChange = (ft.mean - g.mean) * 100;
  }
  return {
    groups,
    runs: groups.flatMap((g) => g.runs),
    settings,
    inputs: inputDirs.map((d) => path.resolve(d)),
    compares: inputs.compares.map((c) => c.dir),
  };
}

// Formatting shared by HTML and Markdown, so both show the same digits.
export const fmt = {
  pct: (x: number | null | undefined, digits = 2): string => (x === null || x === undefined || !Number.isFinite(x) ? '—' : (x * 100).toFixed(digits)),
  meanStd: (m: number, s: number, n: number): string => (n === 0 ? '—' : n === 1 ? `${(m * 100).toFixed(2)}` : `${(m * 100).toFixed(2)} ± ${(s * 100).toFixed(2)}`),
  change: (g: Group): string => {
    if (g.method === 'finetune' && g.n > 0) return 'reference';
    if (g.errorChange === null) return '—';
    const v = g.errorChange;
    return `${v > 0 ? '+' : v < 0 ? '-' : '±'}${Math.abs(v).toFixed(2)} pp`;
  },
  count: (x: number | null): string => (x === null ? '—' : x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : String(x)),
  seconds: (x: number | null): string => {
    if (x === null || !Number.isFinite(x)) return '—';
    if (x < 60) return `${x.toFixed(1)} s`;
    if (x < 3600) return `${(x / 60).toFixed(1)} min`;
    return `${(x / 3600).toFixed(2)} h`;
  },
  num: (x: number, digits = 4): string => (Number.isFinite(x) ? x.toFixed(digits) : '—'),
};
