/**
 * Where AdaFilter stands: the transfer benchmark's headline, read from the summary it published
 * (docs/results/transfer-<profile>.json; one home for the numbers), for the demo to print.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The profile whose summary is the current answer (issue 13's benchmark). */
export const HEADLINE_PROFILE = 'fidelity';

interface Interval { estimate: number; lo: number; hi: number; pairs: number; excludesZero: boolean }

const signed = (x: number) => `${x > 0 ? '+' : x < 0 ? '−' : '±'}${Math.abs(x).toFixed(2)}`;

/** One sentence, or null when this checkout has no published summary (an installed package). */
export function readBenchmarkHeadline(root: string, profile = HEADLINE_PROFILE): string | null {
  const file = path.join(root, 'docs', 'results', `transfer-${profile}.json`);
  let s: { intervals?: Record<string, Interval>; tables?: { datasets?: { average?: Record<string, { value: number | null; groups: number }> } } };
  try {
    s = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
  const iv = s.intervals?.adafilter;
  const avg = s.tables?.datasets?.average?.adafilter;
  if (!iv || !avg || avg.value === null) return null;
  const verdict = iv.hi < 0 ? 'fewer errors than finetune' : iv.lo > 0 ? 'more errors than finetune' : 'no difference from finetune beyond noise';
  return `Where AdaFilter stands (transfer benchmark, ${profile} profile, docs/results.md): test error ${signed(avg.value)} points ` +
    `vs finetune averaged over ${avg.groups} datasets, 95% paired bootstrap interval [${signed(iv.lo)}, ${signed(iv.hi)}] ` +
    `over ${iv.pairs} (cell, seed) pairs: ${verdict}.`;
}
