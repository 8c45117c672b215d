/**
 * The report's charts as Vega-Lite specifications, rendered to SVG strings in Node (Vega's headless
 * renderer: no DOM, no canvas, no browser). See docs/reports.md for why Vega-Lite.
 */
import { pathToFileURL } from 'node:url';
import type { Group, ReportModel } from './model';

type Spec = Record<string, unknown>;

interface VegaLite { compile(spec: Spec): { spec: Spec } }
interface VegaView { toSVG(): Promise<string>; finalize(): void }
interface TextItem { fontSize?: number; fontWeight?: string | number }
interface Vega {
  parse(spec: Spec): unknown;
  View: new (runtime: unknown, options: { renderer: 'none' }) => VegaView;
  textMetrics: { width: (item: TextItem, text: string) => number };
}

// vega and vega-lite are ES modules with top-level await: Node refuses to require() them, and
// TypeScript, compiling to CommonJS, would turn a plain import() into require(). A Function body
// keeps the import() as written; the resolved absolute URL makes it independent of the caller.
const importEsm = new Function('u', 'return import(u)') as (url: string) => Promise<unknown>;
let libs: Promise<{ vl: VegaLite; vega: Vega }> | null = null;

function load(): Promise<{ vl: VegaLite; vega: Vega }> {
  libs ??= Promise.all([
    importEsm(pathToFileURL(require.resolve('vega-lite')).href),
    importEsm(pathToFileURL(require.resolve('vega')).href),
  ]).then(([vl, vega]) => {
    (vega as Vega).textMetrics.width = textWidth;
    return { vl: vl as VegaLite, vega: vega as Vega };
  });
  return libs;
}

/**
 * Text width for layout. Without a canvas Vega guesses 0.8 em per character, about 1.5 times too
 * wide for sans-serif text: long class and layer names were cut short with an ellipsis and axis
 * titles pushed far from their axes. Per-character widths of a typical sans-serif font are close
 * enough, and unlike measuring with a canvas, the SVG does not depend on the fonts installed.
 */
function textWidth(item: TextItem, text: string): number {
  const size = item.fontSize ?? 11;
  const bold = item.fontWeight === 'bold' || Number(item.fontWeight) >= 600 ? 1.06 : 1;
  let em = 0;
  for (const ch of String(text ?? '').trim()) {
    if ("il.,:;'|!ftjI()[] ".includes(ch)) em += 0.3;
    else if ('mwMW%@'.includes(ch)) em += 0.86;
    else if (/[A-Z]/.test(ch)) em += 0.66;
    else if (/[0-9]/.test(ch)) em += 0.57;
    else em += 0.52;
  }
  return em * size * bold;
}

export interface Chart {
  /** File-name part: report-<id>.svg beside the Markdown. */
  id: string;
  title: string;
  /** One line under the chart saying how to read it. */
  caption: string;
  svg: string;
}

const FONT = 'Noto Sans, DejaVu Sans, Helvetica, Arial, sans-serif';
const CONFIG = {
  font: FONT,
  background: 'white',
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eee', labelLimit: 180 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 220 },
  title: { fontSize: 14, anchor: 'start' },
};

/** Keeps NaN (a diverged loss, an unseen class) out of the data: Vega-Lite treats null as missing. */
function finite(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

async function render(spec: Spec, id: string): Promise<string> {
  const { vl, vega } = await load();
  const compiled = vl.compile({ config: CONFIG, ...spec }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return scopeIds(await view.toSVG(), id);
  } finally {
    view.finalize();
  }
}

/**
 * Vega numbers clip paths and gradients per process; several charts inlined in one HTML page must
 * not share an id, and a chart's ids must not depend on what was rendered before it.
 */
function scopeIds(svg: string, id: string): string {
  const ids = new Set<string>();
  for (const m of svg.matchAll(/\sid="([^"]+)"/g)) ids.add(m[1]);
  if (ids.size === 0) return svg;
  const prefix = `${id.replace(/[^A-Za-z0-9_-]/g, '_')}-`;
  return svg
    .replace(/(\sid=")([^"]+)"/g, (all, a: string, v: string) => (ids.has(v) ? `${a}${prefix}${v}"` : all))
    .replace(/url\(#([^)]+)\)/g, (all, v: string) => (ids.has(v) ? `url(#${prefix}${v})` : all))
    .replace(/(href=")#([^"]+)"/g, (all, a: string, v: string) => (ids.has(v) ? `${a}#${prefix}${v}"` : all));
}

/** The same domain everywhere, so a method has the same colour in every chart. */
function colorFor(model: ReportModel): Spec {
  return { field: 'method', type: 'nominal', title: 'method', scale: { domain: model.groups.map((g) => g.label) } };
}

async function accuracyChart(model: ReportModel): Promise<Chart | null> {
  const groups = model.groups.filter((g) => g.n > 0);
  if (groups.length === 0) return null;
  const bars = groups.map((g) => ({ method: g.label, mean: g.mean, lo: g.mean - g.std, hi: g.mean + g.std, n: g.n }));
  const points = groups.flatMap((g) => g.finished.map((r) => ({ method: g.label, acc: r.result!.test.acc, seed: r.config.seed })));
  const lo = Math.min(...bars.map((b) => b.lo), ...points.map((p) => p.acc));
  // Accuracies of competing methods differ by a few points: a zero-based axis would hide that.
  const floor = Math.max(0, Math.floor((lo - 0.05) * 20) / 20);
  const x = { field: 'method', type: 'nominal', title: null, sort: groups.map((g) => g.label), axis: { labelAngle: groups.length > 4 ? -30 : 0 } };
  const y = { type: 'quantitative', title: 'test accuracy', scale: { domain: [floor, 1], clamp: true }, axis: { format: '.0%' } };
  const svg = await render({
    width: Math.max(240, 90 * groups.length),
    height: 280,
    layer: [
      { data: { values: bars }, mark: { type: 'bar', clip: true, opacity: 0.85 }, encoding: { x, y: { ...y, field: 'mean' }, color: { ...colorFor(model), legend: null } } },
      { data: { values: bars.filter((b) => b.n > 1) }, mark: { type: 'rule', strokeWidth: 1.5 }, encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' } } },
      { data: { values: bars.filter((b) => b.n > 1) }, mark: { type: 'tick', thickness: 1.5, size: 14, color: 'black' }, encoding: { x, y: { ...y, field: 'lo' } } },
      { data: { values: bars.filter((b) => b.n > 1) }, mark: { type: 'tick', thickness: 1.5, size: 14, color: 'black' }, encoding: { x, y: { ...y, field: 'hi' } } },
      { data: { values: points }, mark: { type: 'point', filled: true, size: 36, fill: 'white', stroke: '#222', strokeWidth: 1.2, opacity: 1 }, encoding: { x, y: { ...y, field: 'acc' } } },
      { data: { values: bars }, mark: { type: 'text', dy: -8, fontSize: 11 }, encoding: { x, y: { ...y, field: 'hi' }, text: { field: 'mean', type: 'quantitative', format: '.2%' } } },
    ],
  }, 'accuracy');
  return { id: 'accuracy', title: 'Test accuracy', caption: 'Bars: mean over seeds; whiskers: ± one standard deviation; dots: single runs.', svg };
}

async function curvesChart(model: ReportModel): Promise<Chart | null> {
  const rows = model.groups.flatMap((g) => g.runs.flatMap((r) => r.log.map((e) => ({
    method: g.label, run: `${g.label} seed ${r.config.seed} ${r.dir}`, epoch: e.epoch, valAcc: finite(e.valAcc), trainLoss: finite(e.trainLoss),
  }))));
  if (rows.length === 0) return null;
  const maxEpoch = Math.max(...rows.map((r) => r.epoch));
  const x = { field: 'epoch', type: 'quantitative', title: 'epoch', scale: { domain: [1, Math.max(2, maxEpoch)] }, axis: { tickMinStep: 1, format: 'd' } };
  const panel = (field: string, title: string, format?: string): Spec => ({
    width: 430,
    height: 260,
    title,
    mark: { type: 'line', point: maxEpoch <= 15 ? { size: 16 } : false, strokeWidth: 1.5, opacity: 0.85 },
    encoding: {
      x,
      y: { field, type: 'quantitative', title: null, scale: { zero: false }, axis: format ? { format } : {} },
      color: colorFor(model),
      // One line per run: seeds are separate lines in their method's colour.
      detail: { field: 'run', type: 'nominal' },
    },
  });
  const svg = await render({
    data: { values: rows },
    hconcat: [panel('valAcc', 'Validation accuracy', '.0%'), panel('trainLoss', 'Training loss')],
  }, 'curves');
  return { id: 'curves', title: 'Learning curves', caption: 'Per epoch, one line per run (seeds in their method’s colour).', svg };
}

/** One chart per set of gated layers: AdaFilter's convolutions and SpotTune's blocks share no axis. */
async function gateLayersCharts(model: ReportModel, gated: Group[]): Promise<Chart[]> {
  const sets: Group[][] = [];
  for (const g of gated) {
    const key = g.gates!.layers.map((l) => l.name).join('\n');
    const set = sets.find((s) => s[0].gates!.layers.map((l) => l.name).join('\n') === key);
    if (set) set.push(g); else sets.push([g]);
  }
  const out: Chart[] = [];
  for (const [i, set] of sets.entries()) {
    const id = i === 0 ? 'gate-layers' : `gate-layers-${i + 1}`;
    const rows = set.flatMap((g) => g.gates!.layers.map((l) => ({ method: g.label, layer: l.name, fraction: finite(l.fraction) })));
    const order = set[0].gates!.layers.map((l) => l.name);
    const blocks = set.every((g) => g.method === 'spottune');
    const svg = await render({
      data: { values: rows },
      width: Math.max(320, Math.min(900, 26 * order.length)),
      height: 240,
      mark: { type: 'line', point: { size: 30 }, strokeWidth: 1.5 },
      encoding: {
        x: { field: 'layer', type: 'ordinal', title: `gated ${blocks ? 'block' : 'layer'} (forward order)`, sort: order, axis: { labelAngle: -45 } },
        y: { field: 'fraction', type: 'quantitative', title: 'fraction fine-tuned', scale: { domain: [0, 1] }, axis: { format: '.0%' } },
        // The shared domain keeps colours consistent; the legend lists only the methods drawn here.
        color: { ...colorFor(model), legend: { values: set.map((g) => g.label) } },
      },
    }, id);
    out.push({
      id,
      title: sets.length > 1 ? `Fine-tuned ${blocks ? 'blocks' : 'filters'} per ${blocks ? 'block' : 'layer'}: ${set.map((g) => g.label).join(', ')}` : 'Fine-tuned filters per layer',
      caption: blocks
        ? 'Share of test examples using the fine-tuned copy of each block, mean over seeds.'
        : 'Share of (example, filter) gates choosing the fine-tuned filter on the test set, mean over seeds.',
      svg,
    });
  }
  return out;
}

async function heatmap(g: Group, index: number): Promise<Chart> {
  const gates = g.gates!;
  const rows = gates.perClass.map((p) => ({ layer: p.layer, cls: p.cls, fraction: finite(p.fraction) }));
  const layers = gates.layers.map((l) => l.name);
  const k = gates.classes.length;
  const step = k <= 20 ? 30 : k <= 60 ? 16 : 9;
  const id = `gates-${index + 1}`;
  const svg = await render({
    data: { values: rows },
    width: { step },
    height: { step: 18 },
    title: g.label,
    mark: { type: 'rect' },
    encoding: {
      x: { field: 'cls', type: 'nominal', title: 'class', sort: gates.classes, axis: { labelAngle: k <= 8 ? 0 : -90, labelLimit: 120 } },
      y: { field: 'layer', type: 'nominal', title: null, sort: layers },
      color: { field: 'fraction', type: 'quantitative', title: 'fine-tuned', scale: { domain: [0, 1], scheme: 'viridis' }, legend: { format: '.0%' } },
    },
  }, id);
  return {
    id, title: `Fine-tuned filters by layer and class: ${g.label}`,
    caption: `${g.method === 'spottune' ? 'Share of each class’s test examples using the fine-tuned block' : 'Share of gates choosing the fine-tuned filter, among each class’s test examples'}; mean over ${gates.runs} run${gates.runs > 1 ? 's' : ''}.`,
    svg,
  };
}

/**
 * Is the gate learning? Per epoch, on the validation split, for runs that log it: the fraction of
 * fine-tuned filters, the share of filters whose choice varies across examples, the mean |z| of the
 * gate logits and ‖F − S‖ / ‖S‖.
 */
async function gateLearningChart(model: ReportModel): Promise<Chart | null> {
  const rows = model.groups.flatMap((g) => g.runs.flatMap((r) => r.log.filter((e) => e.gates).map((e) => ({
    method: g.label, run: `${g.label} seed ${r.config.seed} ${r.dir}`, epoch: e.epoch,
    fraction: finite(e.gates!.fraction), varying: finite(e.gates!.filtersVarying),
    logit: e.gates!.meanAbsLogit === null ? null : finite(e.gates!.meanAbsLogit), drift: e.gates!.drift === null ? null : finite(e.gates!.drift),
  }))));
  if (rows.length === 0) return null;
  const maxEpoch = Math.max(...rows.map((r) => r.epoch));
  const x = { field: 'epoch', type: 'quantitative', title: 'epoch', scale: { domain: [1, Math.max(2, maxEpoch)] }, axis: { tickMinStep: 1, format: 'd' } };
  const panel = (field: string, title: string, unit: boolean): Spec => ({
    width: 200,
    height: 180,
    title,
    mark: { type: 'line', strokeWidth: 1.5, opacity: 0.85 },
    encoding: {
      x,
      y: { field, type: 'quantitative', title: null, scale: unit ? { domain: [0, 1] } : { zero: true }, axis: unit ? { format: '.0%' } : {} },
      color: colorFor(model),
      detail: { field: 'run', type: 'nominal' },
    },
  });
  const panels = [panel('fraction', 'Fine-tuned filters', true), panel('varying', 'Filters varying per example', true)];
  if (rows.some((r) => r.logit !== null)) panels.push(panel('logit', 'Mean |gate logit|', false));
  if (rows.some((r) => r.drift !== null)) panels.push(panel('drift', '‖F − S‖ / ‖S‖', false));
  const svg = await render({ data: { values: rows }, hconcat: panels }, 'gate-learning');
  return {
    id: 'gate-learning', title: 'Is the gate learning?',
    caption: 'Per epoch on the validation split (evaluation gates), one line per run: a gate that stays at its starting fraction with small logits and no per-example variation has not learned.',
    svg,
  };
}

/** Fraction of fine-tuned gates per block: a gated layer belongs to the block whose name prefixes it (weighted by filters). */
function blockFractions(g: Group, blocks: string[]): Map<string, number> {
  const sums = new Map<string, { f: number; n: number }>();
  for (const l of g.gates!.layers) {
    const block = blocks.filter((b) => l.name === b || l.name.startsWith(`${b}.`)).sort((x, y) => y.length - x.length)[0];
    if (block === undefined || !Number.isFinite(l.fraction)) continue;
    const s = sums.get(block) ?? { f: 0, n: 0 };
    s.f += l.fraction * l.filters; s.n += l.filters;
    sums.set(block, s);
  }
  return new Map([...sums].map(([b, s]) => [b, s.f / s.n]));
}

/**
 * What did fine-tuning change, and where? Per layer (rows) and method (columns), the similarity
 * results kept in the runs' folders (`analyze similarity A RUN --out RUN/similarity.json`), mean over
 * a method's runs; next to it, for gated methods, the share of fine-tuned filters in the same blocks.
 */
async function similarityCharts(model: ReportModel): Promise<Chart[]> {
  const out: Chart[] = [];
  for (const metric of ['cka', 'svcca'] as const) {
    const rows: { method: string; layer: string; value: number | null }[] = [];
    const layers: string[] = [];
    const against = new Set<string>();
    let records = 0;
    for (const g of model.groups) {
      const recs = g.runs.flatMap((r) => r.similarity.filter((x) => x.metric === metric));
      if (!recs.length) continue;
      records += recs.length;
      for (const r of recs) against.add(r.a);
      const byLayer = new Map<string, number[]>();
      for (const r of recs) for (const l of r.layers) {
        if (!layers.includes(l.name)) layers.push(l.name);
        if (Number.isFinite(l.value)) byLayer.set(l.name, [...(byLayer.get(l.name) ?? []), l.value]);
      }
      for (const [layer, vs] of byLayer) rows.push({ method: g.label, layer, value: finite(vs.reduce((a, b) => a + b, 0) / vs.length) });
    }
    if (!rows.length) continue;
    const methods = model.groups.filter((g) => rows.some((r) => r.method === g.label)).map((g) => g.label);
    const gated = model.groups.filter((g) => g.gates);
    const fractions = gated.flatMap((g) => [...blockFractions(g, layers)].map(([layer, f]) => ({ method: g.label, layer, fraction: finite(f) })));
    const name = metric === 'cka' ? 'linear CKA' : 'SVCCA';
    const y = { field: 'layer', type: 'nominal', title: null, sort: layers };
    // White text on the scheme's dark end: high values in blues, low ones in viridis.
    const cells = (field: string, title: string, scheme: string, sort: string[], fmt: string, dark: string): Spec => ({
      width: { step: 70 }, height: { step: 18 }, title,
      layer: [
        { mark: { type: 'rect' }, encoding: {
          x: { field: 'method', type: 'nominal', title: null, sort, axis: { labelAngle: sort.length > 4 ? -30 : 0, orient: 'top' } }, y,
          color: { field, type: 'quantitative', title, scale: { domain: [0, 1], scheme }, legend: { format: fmt } },
        } },
        { mark: { type: 'text', fontSize: 10 }, encoding: {
          x: { field: 'method', type: 'nominal', sort }, y,
          text: { field, type: 'quantitative', format: fmt },
          color: { condition: { test: `datum['${field}'] ${dark}`, value: 'white' }, value: 'black' },
        } },
      ],
    });
    const panels: Spec[] = [{ data: { values: rows }, ...cells('value', name, 'blues', methods, '.2f', '> 0.6') }];
    if (fractions.length) panels.push({ data: { values: fractions }, ...cells('fraction', 'fine-tuned filters', 'viridis', gated.map((g) => g.label), '.0%', '< 0.5') });
    const id = metric === 'cka' ? 'similarity' : 'similarity-svcca';
    const svg = await render({ hconcat: panels, resolve: { scale: { color: 'independent' } } }, id);
    out.push({
      id,
      title: `What fine-tuning changed: ${name} per layer`,
      caption: `${name} of each block's output between ${[...against].join(', ')} and the runs (1: the same representation up to rotation and scale), `
        + `mean over ${records} analys${records === 1 ? 'is' : 'es'} kept in the run folders${fractions.length ? '; right: the share of gates choosing the fine-tuned filter in that block (test set)' : ''}.`,
      svg,
    });
  }
  return out;
}

/** Every chart of the report, in the order shown; charts without data are left out. */
export async function buildCharts(model: ReportModel): Promise<Chart[]> {
  const gated = model.groups.filter((g) => g.gates);
  const out: (Chart | null)[] = [];
  // Sequential on purpose: Vega views are cheap, and parallel renders only interleave the same CPU.
  out.push(await accuracyChart(model));
  out.push(await curvesChart(model));
  out.push(...await gateLayersCharts(model, gated));
  out.push(...await similarityCharts(model));
  for (const [i, g] of gated.entries()) out.push(await heatmap(g, i));
  out.push(await gateLearningChart(model));
  return out.filter((c): c is Chart => c !== null);
}
