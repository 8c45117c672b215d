/**
 * report.html: one self-contained page (inline CSS and SVG; no scripts, fonts or images fetched),
 * so it can be mailed, archived or opened offline and shows the same everywhere.
 */
import type { Chart } from './charts';
import type { ReportModel } from './model';
import type { Table } from './tables';

/** Every string from run folders (class names, methods, paths) goes through this. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const CSS = `
body { font-family: "Noto Sans", "DejaVu Sans", Helvetica, Arial, sans-serif; color: #222; margin: 24px auto; max-width: 1140px; padding: 0 16px; line-height: 1.4; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.meta, p.note, figcaption { color: #555; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:hover { background: #fafafa; }
figure { margin: 16px 0 24px; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; display: block; }
figure.wide svg { max-width: none; }
code { font-size: 12px; background: #f4f4f4; padding: 1px 4px; border-radius: 3px; word-break: break-all; }
details summary { cursor: pointer; color: #333; font-size: 14px; margin: 8px 0; }
`;

function table(t: Table): string {
  const cls = (i: number) => (t.numeric[i] ? ' class="n"' : '');
  const head = t.head.map((h, i) => `<th${cls(i)}>${escapeHtml(h)}</th>`).join('');
  const rows = t.rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${rows}\n</tbody>\n</table>`;
}

function section(t: Table, collapse = false): string {
  const note = t.note ? `<p class="note">${escapeHtml(t.note)}</p>\n` : '';
  if (collapse) return `<h2>${escapeHtml(t.title)}</h2>\n${note}<details><summary>${t.rows.length} rows</summary>\n${table(t)}\n</details>`;
  return `<h2>${escapeHtml(t.title)}</h2>\n${note}${table(t)}`;
}

function figure(c: Chart): string {
  // The SVG comes from Vega, which escapes the text it draws; it is inlined as is.
  const wide = /width="(\d+)"/.exec(c.svg);
  const cls = wide && Number(wide[1]) > 1140 ? ' class="wide"' : '';
  return `<figure${cls}>\n${c.svg}\n<figcaption>${escapeHtml(c.caption)}</figcaption>\n</figure>`;
}

export interface HtmlParts {
  model: ReportModel;
  tables: { comparison: Table; setup: Table; runs: Table; perClass: Table | null };
  charts: Chart[];
  generated: string;
}

export function renderHtml({ model, tables, charts, generated }: HtmlParts): string {
  const settings = model.settings.map((s) => `${s.data} · ${s.backbone}`).join('; ');
  const title = `adafilter report: ${settings}`;
  const byId = (p: string) => charts.filter((c) => c.id === p || c.id.startsWith(`${p}-`));
  const chartSection = (h: string, cs: Chart[]) => (cs.length ? `<h2>${escapeHtml(h)}</h2>\n${cs.map(figure).join('\n')}` : '');
  const sources = model.inputs.map((d) => `<li><code>${escapeHtml(d)}</code></li>`).join('');
  const parts = [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    `<h1>${escapeHtml(title)}</h1>`,
    `<p class="meta">${model.runs.length} run${model.runs.length === 1 ? '' : 's'} of ${model.groups.length} method${model.groups.length === 1 ? '' : 's'}; generated ${escapeHtml(generated)}.</p>`,
    section(tables.comparison),
    chartSection('Test accuracy', byId('accuracy')),
    chartSection('Learning curves', byId('curves')),
    chartSection('Fine-tuned filters per layer', byId('gate-layers')),
    chartSection('Fine-tuned filters by layer and class', byId('gates')),
    chartSection('Is the gate learning?', byId('gate-learning')),
    tables.perClass ? section(tables.perClass, tables.perClass.rows.length > 20) : '',
    section(tables.setup),
    section(tables.runs),
    `<h2>Inputs</h2>\n<ul>${sources}</ul>`,
    '</body>',
    '</html>',
    '',
  ];
  return parts.filter((p) => p !== '').join('\n');
}
