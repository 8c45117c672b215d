/**
 * report.md: the same tables as the HTML, and the charts as SVG files beside it (report-*.svg),
 * linked as images so a Git host or an editor preview shows them.
 */
import type { Chart } from './charts';
import type { HtmlParts } from './html';
import type { Table } from './tables';

/**
 * Markdown has no escape-everything syntax. Entities for < and & keep inline HTML from user strings
 * literal; backslashes go before what acts mid-line (emphasis, code, links, table pipes,
 * strikethrough). Line-start syntax (#, -, 1.) cannot occur: every user string sits in a table
 * cell or after fixed text.
 */
export function escapeMd(s: string): string {
  return s
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/([\\`*_[\]|~])/g, '\\$1')
    .replace(/\r?\n/g, ' ');
}

function table(t: Table): string {
  const line = (cells: string[]) => `| ${cells.map(escapeMd).join(' | ')} |`;
  const rule = `|${t.numeric.map((n) => (n ? ' ---: ' : ' --- ')).join('|')}|`;
  return [line(t.head), rule, ...t.rows.map(line)].join('\n');
}

function section(t: Table): string {
  return [`## ${escapeMd(t.title)}`, '', ...(t.note ? [escapeMd(t.note), ''] : []), table(t)].join('\n');
}

export function chartFile(c: Chart): string {
  return `report-${c.id}.svg`;
}

export function renderMarkdown({ model, tables, charts, generated }: HtmlParts): string {
  const settings = model.settings.map((s) => `${s.data} · ${s.backbone}`).join('; ');
  const out = [
    `# adafilter report: ${escapeMd(settings)}`,
    '',
    `${model.runs.length} run${model.runs.length === 1 ? '' : 's'} of ${model.groups.length} method${model.groups.length === 1 ? '' : 's'}; generated ${escapeMd(generated)}.`,
    '',
    section(tables.comparison),
  ];
  if (charts.length) {
    out.push('', '## Charts');
    // File names are made of fixed words and numbers, never of user strings: nothing to escape.
    for (const c of charts) out.push('', `### ${escapeMd(c.title)}`, '', `![${escapeMd(c.title)}](${chartFile(c)})`, '', escapeMd(c.caption));
  }
  if (tables.perClass) out.push('', section(tables.perClass));
  out.push('', section(tables.setup), '', section(tables.runs), '', '## Inputs', '', ...model.inputs.map((d) => `- ${escapeMd(d)}`), '');
  return out.join('\n');
}
