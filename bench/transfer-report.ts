/**
 * docs/results.md from the transfer benchmark's summaries. Everything but the discussion block is
 * generated; the discussion (between the markers) is kept from the existing file when regenerating.
 */
import type { TransferSummary } from './transfer';

export const DISCUSSION_START = '<!-- discussion:start -->';
export const DISCUSSION_END = '<!-- discussion:end -->';
const GOAL = -2.54;

const f2 = (x: number | null | undefined) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(2));
const signed = (x: number | null | undefined) => (x === null || x === undefined || Number.isNaN(x) ? '—' : `${x > 0 ? '+' : ''}${x.toFixed(2)}`);

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** The discussion block of an existing results.md, or a placeholder. */
export function keepDiscussion(existing: string | null): string {
  if (existing) {
    const a = existing.indexOf(DISCUSSION_START), b = existing.indexOf(DISCUSSION_END);
    if (a >= 0 && b > a) return existing.slice(a + DISCUSSION_START.length, b).trim();
  }
  return '_Not written yet._';
}

export function headline(s: TransferSummary): string {
  if (s.defaults) return defaultsHeadline(s);
  if (s.cells.length && s.cells.every((c) => c.methods.length === 1 && c.methods[0] === 'linear-probe')) return probeHeadline(s);
  if (s.kind === 'variants') {
    const parts = Object.entries(s.intervals).filter(([k]) => k.startsWith('adafilter @ '))
      .map(([k, iv]) => `${k.slice('adafilter @ '.length)}: ${signed(iv.estimate)} [${signed(iv.lo)}, ${signed(iv.hi)}]`);
    return `**${s.profile}** (exploratory, one cell): AdaFilter − finetune test error in points, with 95% paired bootstrap intervals — ${parts.join('; ') || 'nothing finished'}.`;
  }
  if (s.cells.length === 0) {
    const chosen = Object.entries(s.chosen).flatMap(([b, ms]) => Object.entries(ms).map(([m, t]) =>
      `${m} on ${b}: lr ${t.lr}${t.gateLr !== undefined ? `, gate lr ${t.gateLr}` : ''}${t.options ? ` (${Object.entries(t.options).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`));
    return `**${s.profile}** (a validation search only, no test split read): chose ${chosen.join('; ')}.`;
  }
  if (s.precision?.length) {
    return `**${s.profile}** (reduced precision against fp32, test accuracy): ` + s.precision.map((r) =>
      `${r.method} on ${r.fp32.cell}: ${r.other.precision} − fp32 ${signed(r.difference)} points (fp32 sd ${f2(r.fp32.std)} over ${r.fp32.n} seeds, ${r.withinFp32Sd ? 'within' : 'outside'} it)`).join('; ') + '.';
  }
  if (!s.cells.some((c) => c.methods.includes('adafilter'))) {
    const parts = Object.entries(s.intervals).map(([m, iv]) => `${m} ${signed(iv.estimate)} [${signed(iv.lo)}, ${signed(iv.hi)}] (${iv.pairs} pairs)`);
    return `**${s.profile} profile:** test error against standard fine-tuning, averaged over datasets, in points with 95% paired bootstrap intervals — ${parts.join('; ') || 'nothing finished'}.`;
  }
  const iv = s.intervals.adafilter;
  const avg = s.tables.datasets.average.adafilter;
  if (!iv || avg?.value === null || avg === undefined) return `No AdaFilter/finetune pairs finished in the ${s.profile} profile.`;
  const met = avg.value! <= GOAL && iv.excludesZero && iv.hi < 0;
  return `**${s.profile} profile:** AdaFilter's test error, averaged over ${avg.groups} dataset(s), is ` +
    `**${signed(avg.value)} points** against standard fine-tuning (negative = fewer errors); paired bootstrap ` +
    `${Math.round(iv.level * 100)}% interval [${signed(iv.lo)}, ${signed(iv.hi)}] over ${iv.pairs} (cell, seed) pairs ` +
    `(${iv.resamples.toLocaleString('en-US')} resamples, seed ${iv.seed}). The issue's goal (≤ ${GOAL} points with the interval excluding zero) is ` +
    `**${met ? 'met' : 'not met'}**.`;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '—' : (100 * x).toFixed(2));
const yesNo = (x: boolean | null) => (x === null ? '—' : x ? 'yes' : 'no');

/** Issue 15's goal: the default's features this far above doodles-resnet20's (points of linear-probe accuracy). */
export const PROBE_GOAL = 10;
const PROBE_BASE = 'doodles-resnet20';

/**
 * Per backbone, linear-probe test accuracy averaged over cells (each cell the mean of its seeds, so a
 * missing seed does not reweight the cells), and how many of the profile's cells it has finished.
 */
export function probeMeans(s: TransferSummary): { backbone: string; mean: number | null; cells: number; of: number }[] {
  const backbones = [...new Set(s.cells.filter((c) => !c.skipped).map((c) => c.backbone))];
  return backbones.map((b) => {
    const cells = s.cells.filter((c) => c.backbone === b && !c.skipped);
    const means = cells.map((c) => s.runs.filter((r) => r.cell === c.id && r.method === 'linear-probe').map((r) => r.testAcc))
      .filter((a) => a.length > 0).map((a) => (100 * a.reduce((x, y) => x + y, 0)) / a.length);
    return { backbone: b, mean: means.length ? means.reduce((x, y) => x + y, 0) / means.length : null, cells: means.length, of: cells.length };
  });
}

/** The Answer line of a linear-probe-only profile: each backbone's mean against doodles-resnet20's. */
export function probeHeadline(s: TransferSummary): string {
  const rows = probeMeans(s);
  const base = rows.find((r) => r.backbone === PROBE_BASE && r.cells === r.of);
  const parts = rows.map((r) => `${r.backbone} ${pct(r.mean === null ? null : r.mean / 100)}%` +
    (r.cells < r.of ? ` (${r.cells} of ${r.of} cells)` : base && r !== base && r.mean !== null ? ` (${signed(r.mean - base.mean!)})` : ''));
  const def = rows.find((r) => r.backbone === 'default');
  const goal = base && def && def.cells === def.of && def.mean !== null
    ? ` Issue 15's goal (default ≥ ${PROBE_GOAL} points above ${PROBE_BASE}) is **${def.mean - base.mean! >= PROBE_GOAL ? 'met' : 'not met'}**.` : '';
  return `**${s.profile}** (linear-probe test accuracy averaged over each backbone's cells, mean of ${s.settings.seeds} seeds per cell): ${parts.join('; ')}.${goal}`;
}

/** The profile's cells a defaults report has no runs of (reports before 2026-12-02 list every cell they planned: none). */
function unmeasuredCells(d: NonNullable<TransferSummary['defaults']>): string[] {
  return (d.profileCells ?? []).filter((id) => !d.cells.some((c) => c.id === id));
}

/** The Answer line of the defaults profile (issue 14's acceptance). */
export function defaultsHeadline(s: TransferSummary): string {
  const d = s.defaults!, m = d.summary;
  const all = d.profileCells ?? d.cells.map((c) => c.id);
  const unmeasured = unmeasuredCells(d);
  if (!m.rows) return `**${s.profile}** (issue 14): no (cell, method) has its whole grid, default and --auto finished yet.`;
  return `**${s.profile}** (issue 14, against the grid point of best **test** accuracy, an oracle): the default run is within ${d.defaultGap} points on ` +
    `${m.defaultMeets} of ${m.rows} (cell, method) pairs (gap mean ${signed(m.meanDefaultGap)}, worst ${signed(m.maxDefaultGap)} points), ` +
    `--auto within ${d.autoGap} point on ${m.autoMeets} of ${m.rows} (mean ${signed(m.meanAutoGap)}, worst ${signed(m.maxAutoGap)}); ` +
    // Unfinished pairs count against the acceptance: it is about every cell.
    `${d.gaps.length > m.rows ? `${d.gaps.length - m.rows} of ${d.gaps.length} pairs not finished; ` : ''}` +
    `${unmeasured.length ? `${unmeasured.length} of ${all.length} cells not measured (${unmeasured.join(', ')}); ` : ''}acceptance ` +
    `**${m.defaultMeets === m.rows && m.autoMeets === m.rows && m.rows === d.gaps.length && !unmeasured.length ? 'met' : 'not met'}**.`;
}

/** Results of one seed differ between CPUs (Intel Xeon and AMD EPYC give different floats): the machine is part of a result. */
function machineLine(s: TransferSummary): string {
  const m = s.machine;
  return `- Machine: ${m.cpu}, ${m.cores} cores (shared with other jobs), ${m.memory_gib} GiB, libtorch ${m.libtorch}, Node ${m.node}; ` +
    `${s.settings.jobs} training process(es) × ${s.settings.threads} libtorch thread(s).`;
}

function defaultsSection(s: TransferSummary, level: string): string {
  const d = s.defaults!;
  const out: string[] = [`${level} Setup`, ''];
  out.push(`- Command: \`${s.command || `adafilter bench transfer --profile ${s.profile}`}\``);
  out.push(`- Ran ${s.startedAt} → ${s.finishedAt} (${(s.wallSeconds / 60).toFixed(1)} min wall for this invocation; earlier invocations' runs are reused).`);
  out.push(machineLine(s));
  out.push(`- Every run has the trainer's defaults (batch 32, the backbone's preprocessing, augmentation, cosine schedule) but for the grid's flags: ` +
    `lr ${d.lrFactors.join(', ')} × 0.01 (\`--lr\`; the gate lr left to the trainer, so it follows the method's default ratio) and ` +
    `${d.budgetFactors.join(', ')} × the default rule's steps (\`--steps\`); seeds 0..${d.seeds - 1}.`);
  out.push(`- Trainings: ${d.plannedTrainings} planned; ${d.reusedRuns} runs are not trained again: each default run **is** its grid centre (both flags left out: ` +
    `the same options), and a point whose (lr, gate lr, budget) is one of --auto's trials is that trial's folder continued to the test score (as --auto makes its final run; not where --auto cross-validates).`);
  const measured = d.cells.some((c) => c.measured);
  out.push('', table(['cell', 'dataset', 'data', 'backbone', 'shots/class', 'train images', 'default steps', '--auto validates on', ...(measured ? ['measured (last run finished; machine; weights SHA-256)'] : [])],
    d.cells.map((c) => [c.id, c.group, `\`${c.dataName.replace(/^(folder:)?\/.*\/data\//, '$1OUT/data/')}\``, c.backbone, c.shots ? String(c.shots) : 'all', String(c.trainSize), String(c.defaultSteps),
      (c.autoFolds ?? 1) > 1 ? `${c.autoFolds}-fold cross-validation` : 'the validation split',
      ...(measured ? [c.measured ? `${c.measured.lastResultAt?.slice(0, 16).replace('T', ' ') ?? '—'}; ${c.measured.machine}; ${c.measured.backboneSha256?.slice(0, 12) ?? '—'}` : '—'] : [])])), '');
  const unmeasured = unmeasuredCells(d);
  if (unmeasured.length) out.push(`Not measured yet: ${unmeasured.join(', ')}.`, '');
  if (s.cuts.length) out.push(`What this profile leaves out: ${s.cuts.join('; ')}.`, '');
  out.push(`${level} Gaps: default and --auto against the grid's best point (test accuracy %, points)`, '');
  out.push('The acceptance compares with the grid point of best **test** accuracy — an oracle no user has, chosen after looking at the test split; ' +
    'the best point by **validation** accuracy (what a validation search over the same grid would pick) is shown beside it. ' +
    'Its test SE is the binomial standard error of one seed\'s test accuracy on that cell\'s test images: the best of 9 noisy points sits above their true level by about 1.5 SE where they are equally good. Gap = grid best − run, in points ' +
    `(positive: the run is worse); meets: default gap ≤ ${d.defaultGap}, --auto gap ≤ ${d.autoGap}.`, '');
  out.push(table(['cell', 'method', 'grid best by test (point)', 'its test SE', 'grid best by val: test (point)', 'default', 'default gap', 'meets', '--auto (lr, gate lr, budget)', 'auto gap', 'meets'],
    d.gaps.map((g) => [g.cell, g.method,
      g.bestByTest ? `${pct(g.bestByTest.testAcc)} (${g.bestByTest.point})` : `${g.gridFinished}/${g.gridPoints} points`,
      g.testSe != null ? `±${g.testSe.toFixed(1)}` : '—',
      g.bestByVal ? `${pct(g.bestByVal.testAcc)} (${g.bestByVal.point})` : '—',
      g.default ? `${pct(g.default.testAcc)}${g.default.sameRunAs ? ` (= ${g.default.sameRunAs})` : ''}` : '—', signed(g.defaultGap), yesNo(g.defaultMeets),
      g.auto ? `${pct(g.auto.testAcc)} (${g.auto.lr}${g.auto.gateLr !== null ? `, ${g.auto.gateLr}` : ''}, ${g.auto.budget ?? 1}×)` : '—', signed(g.autoGap), yesNo(g.autoMeets)])), '');
  out.push(`${level} Grid: test accuracy % (validation %) per point`, '');
  const keys = [...new Set(d.runs.map((r) => r.point))];
  out.push(table(['cell', 'method', ...keys], d.gaps.map((g) => [g.cell, g.method, ...keys.map((k) => {
    const r = d.runs.find((x) => x.cell === g.cell && x.method === g.method && x.seed === g.seed && x.point === k);
    return r ? `${pct(r.testAcc)} (${pct(r.valAcc)})` : '';
  })])), '');
  const perStep = d.runs.filter((r) => r.secondsPerStep !== null && r.continuedFromTrial === null);
  if (perStep.length) out.push(`Training seconds per step, mean over the trained grid points: ${(perStep.reduce((a, r) => a + r.secondsPerStep!, 0) / perStep.length).toFixed(3)} (a shared machine).`, '');
  out.push(`${level} Missing`, '');
  out.push(s.failures.length ? table(['job', 'error'], s.failures.map((f) => [f.job, f.error.replace(/\|/g, '\\|')])) : 'No failed jobs.', '');
  return out.join('\n');
}

function section(s: TransferSummary, level: string): string {
  if (s.defaults) return defaultsSection(s, level);
  const out: string[] = [];
  const methods = [...new Set(s.cells.flatMap((c) => c.methods))];
  const order = ['linear-probe', 'finetune', 'l2sp', 'bss', 'gna', 'select', 'spottune', 'adafilter', 'adafilter-nogbn', 'random-filter', 'adafilter-static'].filter((m) => methods.includes(m));
  out.push(`${level} Setup`, '');
  out.push(`- Command: \`${s.command || `adafilter bench transfer --profile ${s.profile}`}\``);
  out.push(`- Ran ${s.startedAt} → ${s.finishedAt} (${(s.wallSeconds / 60).toFixed(1)} min wall for this invocation; earlier invocations' runs are reused).`);
  out.push(machineLine(s));
  out.push(`- Every run: SGD momentum 0.9, weight decay 5e-4, cosine schedule, batch ${s.settings.batch}, random crop (pad 1/8) + flip, ` +
    `epochs = round(${s.settings.epochImages} / training-set size) clamped to [${s.settings.minEpochs}, ${s.settings.maxEpochs}] (same for every method of a cell), ` +
    `best-validation-epoch weights tested once; seeds 0..${s.settings.seeds - 1}; compare() gives every method the same splits, shots, order and augmentation per seed.`);
  out.push('', table(['cell', 'dataset', 'data', 'backbone', 'shots/class', 'train images', 'epochs', 'methods'],
    s.cells.map((c) => [c.id, c.group, `\`${c.data ?? `${c.subset!.source} subset: ${c.subset!.train} train pool / ${c.subset!.val} val / ${c.subset!.test} test per class`}\``,
      `${c.backbone}${c.inputSize ? ` @ ${c.inputSize} px` : ''}`, String(c.shots), c.trainSize === null ? '—' : String(c.trainSize),
      c.epochs === null ? '—' : String(c.epochs), c.skipped ? `skipped: ${c.skipped}` : c.methods.join(', ')])));
  out.push('');
  const opts = (o?: Record<string, unknown>) => (o && Object.keys(o).length ? `, ${Object.entries(o).map(([k, v]) => `${k} ${v}`).join(', ')}` : '');
  const setting = (t: { lr: number; gateLr?: number; options?: Record<string, unknown>; from: string }) => `lr ${t.lr}${t.gateLr !== undefined ? `, gate lr ${t.gateLr}` : ''}${opts(t.options)}${t.from === 'fixed' && !s.fixedFrom ? ' (fixed default, not searched)' : ''}`;
  if (s.search.length) {
    out.push(`${level}# Hyper-parameter search`, '');
    out.push('One dev task per backbone (a target of its own, not a benchmark cell), seed 0 only, the same epoch budget as the cells; ' +
      'every method gets the same number of trials (gated methods spend theirs on lr / gate-lr pairs); the trial with the best **validation** ' +
      'accuracy (ties: lower validation loss) is used in every cell of that backbone. Test numbers were never looked at for this.', '');
    for (const sr of s.search) {
      out.push(`Backbone \`${sr.backbone}\`${sr.cell.inputSize ? ` at ${sr.cell.inputSize} px` : ''}, dev task \`${sr.cell.data}\`, ${sr.cell.shots} shots/class, ${sr.cell.epochs ?? '—'} epochs${sr.cell.skipped ? ` — skipped: ${sr.cell.skipped}` : ''}:`, '');
      out.push(table(['method', 'trials: lr (gate lr) → val acc %', 'chosen'],
        order.filter((mm) => sr.cell.methods.includes(mm)).map((mm) => [mm, sr.trials.filter((t) => t.method === mm)
          .map((t) => `${t.lr}${t.gateLr !== null ? ` (${t.gateLr}${opts(t.options)})` : opts(t.options)} → ${t.valAcc === null ? 'missing' : (100 * t.valAcc).toFixed(1)}`).join('; '),
        setting(s.chosen[sr.backbone][mm])])));
      out.push('');
    }
  }
  const unsearched = Object.entries(s.chosen).filter(([b]) => !s.search.some((x) => x.backbone === b));
  for (const [b, ms] of unsearched) out.push(`Backbone \`${b}\`, no search${s.fixedFrom ? ` (settings from ${s.fixedFrom})` : ''}: ${Object.entries(ms).map(([mm, t]) => `${mm} ${setting(t)}`).join('; ')}.`, '');
  if (s.cuts.length) out.push(`What this profile leaves out: ${s.cuts.join('; ')}.`, '');

  out.push(`${level} Error change against finetune, per dataset (points; negative = AdaFilter/method makes fewer errors)`, '');
  const ds = s.tables.datasets;
  const variants = s.kind === 'variants';
  out.push(table([variants ? 'variant' : 'dataset', ...order.filter((x) => x !== 'finetune')],
    [...ds.groups.map((g) => [g, ...order.filter((x) => x !== 'finetune').map((mm) => signed(ds.perGroup[g][mm]))]),
      ...(variants ? [] : [['**average over datasets**', ...order.filter((x) => x !== 'finetune').map((mm) => `**${signed(ds.average[mm]?.value)}** (${ds.average[mm]?.groups ?? 0})`)]])]));
  out.push('', 'Per dataset: the mean over its cells of (finetune accuracy − method accuracy) on the seeds both finished; the average weighs datasets equally (in brackets: how many datasets have the method).', '');

  out.push(`${level} Paired bootstrap, method − finetune (test error, points)`, '');
  out.push(table(['method', 'estimate', '95% interval', 'pairs', 'datasets', 'excludes 0'],
    (variants ? Object.keys(s.intervals) : [...order.filter((x) => s.intervals[x]), ...Object.keys(s.intervals).filter((k) => !order.includes(k))]).map((mm) => {
      const iv = s.intervals[mm];
      return [mm, signed(iv.estimate), `[${signed(iv.lo)}, ${signed(iv.hi)}]`, String(iv.pairs), String(iv.groups), iv.excludesZero ? 'yes' : 'no'];
    })));
  out.push('', 'Pairs are (cell, seed) with both methods finished; resampled with replacement within each dataset, the statistic being the ' +
    'average over datasets of the mean paired difference (so it equals the table\'s average when every cell has all seeds); ' +
    '10,000 resamples, seeded, percentile interval.', '');

  out.push(`${level} Test accuracy per cell (%, mean ± std over seeds; n = seeds finished)`, '');
  out.push(table(['cell', ...order], Object.entries(s.tables.cells).map(([c, rows]) => [c, ...order.map((mm) => {
    const r = rows.find((x) => x.method === mm);
    return r ? `${f2(r.mean)} ± ${f2(r.std)}${r.n !== s.settings.seeds ? ` (n=${r.n})` : ''}` : '';
  })])));
  out.push('');
  out.push(`${level} Error change against finetune per cell (points)`, '');
  out.push(table(['cell', ...order.filter((x) => x !== 'finetune')], Object.entries(s.tables.cells).map(([c, rows]) => [c,
    ...order.filter((x) => x !== 'finetune').map((mm) => signed(rows.find((x) => x.method === mm)?.errorChange))])));
  out.push('');

  // Summaries written before the cost was recorded have no costSeconds: no table for them.
  if (s.runs.some((r) => r.costSeconds !== undefined)) {
    out.push(`${level} Cost per run (seconds, mean over seeds; in brackets: milliseconds per training step)`, '');
    out.push(table(['cell', ...order], Object.keys(s.tables.cells).map((c) => [c, ...order.map((mm) => {
      const rs = s.runs.filter((r) => r.cell === c && r.method === mm);
      if (!rs.length || rs.some((r) => r.costSeconds === undefined)) return '';
      const perStep = rs.map((r) => r.secondsPerStep).filter((x): x is number => typeof x === 'number');
      return `${(rs.reduce((a, r) => a + r.costSeconds, 0) / rs.length).toFixed(0)}${perStep.length === rs.length ? ` (${(1000 * perStep.reduce((a, x) => a + x, 0) / perStep.length).toFixed(1)})` : ''}`;
    })])));
    const searches = s.runs.flatMap((r) => (r.selectCost ? [r.selectCost] : []));
    const avg = (f: (x: (typeof searches)[number]) => number, digits = 1) => (searches.reduce((a, x) => a + f(x), 0) / searches.length).toFixed(digits);
    const selectCost = searches.length ? `select's figure is its whole search: tap features once (mean ${avg((x) => x.features)} s), the candidates' heads ` +
      `(${avg((x) => x.search)} s for ${avg((x) => x.evaluated)} distinct genomes, ${avg((x) => x.perCandidate, 2)} s each) and the final tap-probe run ` +
      `(${avg((x) => x.final)} s)${s.select ? `; population ${s.select.population}, ${s.select.generations} generations` : ''}; its step figure is the final run's.` : '';
    out.push('', 'Training seconds as the trainer measured them (validation passes included), on a machine shared with other jobs: compare methods within a cell, not across profiles. ' + selectCost, '');
  }

  if (s.precision?.length) {
    out.push(`${level} Precision: reduced precision against fp32 (test accuracy %, mean ± sample sd over seeds)`, '');
    out.push(table(['cell', 'method', 'fp32', 'other', 'other − fp32 (points)', 'within fp32 sd', 'fp32 train s', 'other train s'], s.precision.map((r) => [
      r.fp32.cell, r.method, `${f2(r.fp32.mean)} ± ${f2(r.fp32.std)} (n=${r.fp32.n})`, `${r.other.precision}: ${f2(r.other.mean)} ± ${f2(r.other.std)} (n=${r.other.n})`,
      signed(r.difference), r.withinFp32Sd ? 'yes' : 'no', r.fp32.trainSeconds.toFixed(0), r.other.trainSeconds.toFixed(0)])));
    out.push('', 'Same seeds, data, order and augmentation in both precisions; "within" means |difference| ≤ fp32\'s seed-to-seed sd. Training seconds are means per run on a shared machine.', '');
  }

  if (s.byBackbone) {
    out.push(`${level} Per backbone: mean test accuracy over its cells (%)`, '');
    out.push(table(['backbone', ...order], Object.entries(s.byBackbone).map(([b, means]) => [b, ...order.map((mm) => (means[mm] === undefined ? '' : f2(means[mm])))])));
    out.push('', 'A backbone\'s mean covers a method only when all of that backbone\'s cells have its runs; linear-probe is the measure of feature quality.', '');
  }

  const g = s.gateFractions;
  if (g.overall || Object.keys(g.byCell).length) {
    out.push(`${level} AdaFilter: fraction of filters fine-tuned (gate = F), per gated layer, on the test split`, '');
    const cellsWith = Object.keys(g.byCell);
    const names = g.overall?.layers.map((l) => l.name) ?? g.byCell[cellsWith[0]]!.layers.map((l) => l.name);
    const sameLayers = cellsWith.filter((c) => JSON.stringify(g.byCell[c]!.layers.map((l) => l.name)) === JSON.stringify(names));
    out.push(table(['layer', 'filters', 'all runs (shipped backbone)', 'varying filters', ...sameLayers],
      names.map((n, i) => [n, String((g.overall ?? g.byCell[sameLayers[0]]!).layers[i].filters),
        g.overall ? `${f2(g.overall.layers[i].fraction)} ± ${f2(g.overall.layers[i].fractionStd)}` : '—',
        g.overall ? f2(g.overall.layers[i].filtersVarying) : '—',
        ...sameLayers.map((c) => f2(g.byCell[c]!.layers[i].fraction))])));
    const overallRow = ['**overall**', '', g.overall ? f2(g.overall.overall) : '—', '', ...sameLayers.map((c) => f2(g.byCell[c]!.overall))];
    out.push(`| ${overallRow.join(' | ')} |`);
    out.push('', '"varying filters": the fraction of filters whose choice differs between test examples (0 = the gate ignores the input), mean over runs. ' +
      'Cells on other backbones (different layers) are in the JSON.', '');
  }

  out.push(`${level} Missing`, '');
  if (!s.missing.length) out.push('Nothing: every planned run finished.');
  else out.push(table(['cell', 'method', 'seeds missing', 'why'], s.missing.map((x) => [x.cell, x.method, x.seeds.join(', '), x.reason.replace(/\|/g, '\\|')])));
  out.push('');
  return out.join('\n');
}

/** The whole document from the summaries that exist (full first, then quick). */
export function renderResults(summaries: Record<string, TransferSummary | undefined>, discussion = '_Not written yet._'): string {
  const list = ['full', 'variants', 'quick', ...Object.keys(summaries).filter((k) => !['full', 'variants', 'quick'].includes(k))]
    .map((k) => summaries[k]).filter((x): x is TransferSummary => !!x);
  const out: string[] = ['# Transfer benchmark: does AdaFilter beat standard fine-tuning? (issue #7)', ''];
  out.push('<!-- Generated by `adafilter bench transfer` from docs/results/transfer-*.json; only the discussion block is hand-written. -->', '');
  out.push('Targets the shipped backbones never saw (`doodles-resnet20`: resnet20 pretrained on Quick, Draw! classes 0-244 at 32 px, the default until 2026-12-01 and the backbone of every profile but `backbones`; `default` since then: the same architecture on Quick Draw 0-244 plus letters of 137 other scripts): ' +
    'other Quick, Draw! classes (few-shot), glyphs of a script (no target script is in the pretraining of either backbone), Fashion-MNIST (domain shift) and MNIST; ' +
    'plus the nsfwjs MobileNetV2 on two targets. Methods: see docs/methods.md.', '');
  out.push('## Answer', '');
  for (const s of list) out.push(`- ${headline(s)}`);
  out.push('', '## Discussion', '', DISCUSSION_START, discussion.trim(), DISCUSSION_END, '');
  for (const s of list) {
    out.push(`## Profile \`${s.profile}\`: ${s.description}`, '');
    out.push(section(s, '###'));
  }
  out.push('## Reproduce', '', '```sh');
  for (const s of list) out.push(s.command || `node bin/adafilter.js bench transfer --profile ${s.profile}`);
  out.push('```', '', 'Every run folder (run.json, log.jsonl, result.json with gate statistics) stays under the `--out` folder; ' +
    'the summaries in docs/results/ hold every run\'s numbers, the tables, the search and the intervals.', '');
  return out.join('\n');
}
