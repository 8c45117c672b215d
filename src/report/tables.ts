/**
 * The report's tables as plain rows of strings, shared by the HTML and the Markdown writers (which
 * only escape and lay them out).
 */
import * as path from 'node:path';
import { className, fmt, mean, type ReportModel } from './model';

export interface Table {
  title: string;
  note?: string;
  head: string[];
  /** Columns right-aligned (numbers). */
  numeric: boolean[];
  rows: string[][];
}

export function comparisonTable(model: ReportModel): Table {
  const gated = model.groups.some((g) => g.gates);
  const head = ['method', 'runs', 'test accuracy % (mean ± std)', 'error change vs finetune', 'val accuracy %', 'trainable params', 'train time'];
  if (gated) head.push('fine-tuned filters');
  const rows = model.groups.map((g) => {
    const runs = g.runs.length > g.n ? `${g.n} (+${g.runs.length - g.n} unfinished)` : String(g.n);
    const row = [g.label, runs, fmt.meanStd(g.mean, g.std, g.n), fmt.change(g), fmt.pct(g.valMean), fmt.count(g.trainableParams), fmt.seconds(g.trainSeconds)];
    if (gated) row.push(g.gates ? `${fmt.pct(g.gates.fraction, 1)} %` : '—');
    return row;
  });
  return {
    title: 'Comparison',
    note: 'Test accuracy over the finished runs of each method (std: sample standard deviation over seeds). Error change: percentage points of test error relative to finetune on the same data and backbone; negative means fewer errors.',
    head, numeric: head.map((_, i) => i > 0), rows,
  };
}

export function runsTable(model: ReportModel, outDir: string): Table {
  const head = ['run folder', 'method', 'seed', 'epochs', 'best epoch', 'val accuracy %', 'test accuracy %', 'train time'];
  const rows = model.groups.flatMap((g) => g.runs.map((r) => {
    const rel = path.relative(outDir, r.dir) || '.';
    const res = r.result;
    return [
      rel, g.label, String(r.config.seed),
      res ? String(res.epochs) : `${r.log.length} of ${r.config.epochs} (unfinished)`,
      res ? String(res.bestEpoch) : '—',
      fmt.pct(res ? res.val.acc : r.log.at(-1)?.valAcc),
      fmt.pct(res?.test.acc),
      fmt.seconds(res ? res.trainSeconds : r.log.reduce((a, e) => a + e.seconds, 0)),
    ];
  }));
  return { title: 'Runs', note: `Run folders relative to the report's folder.`, head, numeric: head.map((_, i) => i >= 2), rows };
}

export function setupTable(model: ReportModel): Table {
  const head = ['method', 'data', 'backbone', 'epochs', 'batch', 'lr', 'weight decay', 'shots', 'method options'];
  const rows = model.groups.map((g) => {
    const c = g.runs[0].config;
    const opts = Object.entries(c.methodOptions).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ');
    return [g.label, c.data, c.backbone, String(c.epochs), String(c.batch), String(c.lr), String(c.weightDecay), c.shots === null ? 'all' : String(c.shots), opts || '—'];
  });
  return { title: 'Setup', note: 'As in the first run of each method (seed order).', head, numeric: head.map((_, i) => i >= 3 && i <= 7), rows };
}

/** Test accuracy per class and method (mean over finished runs); null when no run recorded it. */
export function perClassTable(model: ReportModel): Table | null {
  const groups = model.groups.filter((g) => g.finished.some((r) => Object.keys(r.result!.test.perClass).length));
  if (groups.length === 0) return null;
  const classes: string[] = [];
  const byName = new Map(groups.flatMap((g) => g.finished.map((r) => {
    const m = new Map<string, number>();
    for (const [k, v] of Object.entries(r.result!.test.perClass)) m.set(className(k, r.config.classes), v);
    return [r, m] as const;
  })));
  for (const g of groups) for (const r of g.finished) {
    const m = byName.get(r)!;
    // Class-list order first, then anything only the result names.
    for (const c of [...r.config.classes, ...m.keys()]) if (m.has(c) && !classes.includes(c)) classes.push(c);
  }
  const rows = classes.map((c) => [c, ...groups.map((g) => {
    const xs = g.finished.map((r) => byName.get(r)!.get(c)).filter((x): x is number => x !== undefined && Number.isFinite(x));
    return fmt.pct(mean(xs), 1);
  })]);
  const head = ['class', ...groups.map((g) => g.label)];
  return { title: 'Test accuracy per class (%)', note: 'Mean over the finished runs of each method.', head, numeric: head.map((_, i) => i > 0), rows };
}
