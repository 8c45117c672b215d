/**
 * `adafilter report`: reads run and compare folders (read-only) and writes report.html and
 * report.md (+ the charts as report-*.svg) into one folder. See docs/reports.md.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import { buildCharts } from './charts';
import { renderHtml, type HtmlParts } from './html';
import { chartFile, renderMarkdown } from './markdown';
import { buildModel } from './model';
import { readInputs } from './read-runs';
import { comparisonTable, perClassTable, runsTable, setupTable } from './tables';

export { readInputs, readRun, readCompare } from './read-runs';
export type { Run, RunConfig, RunResult, EpochLog, CompareInfo, SimilarityRecord } from './read-runs';
export { escapeHtml } from './html';

/** Only names the report itself writes (see chartFile): nothing else in the folder is touched. */
const CHART_FILE = /^report-(accuracy|curves|gate-learning|gate-layers(-\d+)?|gates-\d+|similarity(-svcca)?)\.svg$/;

export interface ReportFiles {
  html: string;
  md: string;
  /** The SVG files the Markdown links to. */
  svgs: string[];
}

/**
 * Writes the files one by one, each through a temporary file and a rename, so a reader never sees a
 * half-written report; if any write fails, the temporary files are removed and nothing new is left.
 */
function writeAll(files: [string, string][]): void {
  const temps: string[] = [];
  try {
    for (const [file, text] of files) {
      const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
      temps.push(tmp);
      fs.writeFileSync(tmp, text);
    }
    // Renames last: only once every file is fully on disk does any of them replace an old report.
    for (const [i, [file]] of files.entries()) fs.renameSync(temps[i], file);
  } catch (e) {
    for (const t of temps) fs.rmSync(t, { force: true });
    throw new InputError(`cannot write the report: ${(e as Error).message}`);
  }
}

/**
 * Reads `dirs` (run folders and/or compare folders) and writes report.html, report.md and the
 * charts into `out` (created if missing). Nothing is written when an input is missing or invalid.
 */
export async function writeReport(dirs: string[], out: string, options: { now?: Date } = {}): Promise<ReportFiles> {
  const inputs = readInputs(dirs);
  if (inputs.runs.length === 0) throw new InputError(`no runs in ${dirs.join(', ')}`);
  const methodOrder = inputs.compares.flatMap((c) => c.methods);
  const model = buildModel(inputs, dirs, methodOrder);
  const outDir = path.resolve(out);
  const charts = await buildCharts(model);
  const parts: HtmlParts = {
    model,
    tables: { comparison: comparisonTable(model), setup: setupTable(model), runs: runsTable(model, outDir), perClass: perClassTable(model) },
    charts,
    generated: (options.now ?? new Date()).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'),
  };
  const html = path.join(outDir, 'report.html');
  const md = path.join(outDir, 'report.md');
  const svgs = charts.map((c) => path.join(outDir, chartFile(c)));
  try {
    fs.mkdirSync(outDir, { recursive: true });
  } catch (e) {
    throw new InputError(`${outDir}: cannot create the output folder: ${(e as Error).message}`);
  }
  writeAll([
    ...charts.map((c, i): [string, string] => [svgs[i], `<?xml version="1.0" encoding="utf-8"?>\n${c.svg}\n`]),
    [md, renderMarkdown(parts)],
    [html, renderHtml(parts)],
  ]);
  // A heatmap of an earlier report with more gated methods would otherwise linger beside this one.
  for (const f of fs.readdirSync(outDir)) {
    if (CHART_FILE.test(f) && !svgs.includes(path.join(outDir, f))) fs.rmSync(path.join(outDir, f), { force: true });
  }
  return { html, md, svgs };
}
