import { shippedBackbone } from '../../src/train/shipped';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getMethod } from '../../src/methods/registry';
import { openSource } from '../../src/data/registry';
import { makeSplits } from '../../src/data/split';
import { ALL_METHODS, dataNameOf, epochsFor, GATED, Profile, PROFILES, SEARCH_METHODS } from '../../bench/transfer-suite';
import { materialiseSubset } from '../../bench/transfer-data';
import {
  cellTable, datasetTable, errorPairs, groupedMean, layerFractions, pairedBootstrap, Pair, quantile, RunRecord,
} from '../../bench/transfer-stats';
import { publishResults, runTransfer } from '../../bench/transfer';
import { DISCUSSION_END, DISCUSSION_START } from '../../bench/transfer-report';
import { close, tmpDir } from './helpers';

test('suite: every method exists, grids are fair, every dataset opens with its shots', async () => {
  const data = tmpDir('suite');
  const sources = new Map<string, Awaited<ReturnType<typeof openSource>>>();
  for (const p of Object.values(PROFILES)) {
    const ids = p.cells.map((c) => c.id);
    assert.equal(new Set(ids).size, ids.length, `${p.name}: cell ids are unique`);
    const used = new Set([...p.cells.flatMap((c) => c.methods), ...p.methodOrder, ...Object.keys(p.fixed)]);
    for (const m of used) if (!SEARCH_METHODS.has(m)) getMethod(m);
    for (const c of p.cells) for (const m of c.methods) assert.ok(p.methodOrder.includes(m), `${p.name}/${c.id}: ${m} is scheduled`);
    for (const m of ALL_METHODS) assert.ok(p.fixed[m], `${p.name}: a fixed setting for ${m}`);
    // The defaults profile (issue 14) measures one seed of a grid, not a comparison over seeds.
    if (!p.defaults) assert.ok(p.seeds >= 3, 'at least 3 seeds');
    for (const sp of p.search) {
      const sizes = new Set(sp.cell.methods.map((m) => sp.grids[m].length));
      assert.equal(sizes.size, 1, 'the same number of trials for every method');
      for (const [m, g] of Object.entries(sp.grids)) {
        getMethod(m);
        for (const t of g) assert.equal(t.gateLr !== undefined, GATED.has(m), `${m}: gate lr only for gated methods`);
      }
      assert.ok(!p.cells.some((c) => c.data === sp.cell.data), 'the dev task is not a benchmark target');
      // Every method a cell of this backbone runs was searched.
      for (const c of p.cells.filter((x) => x.backbone === sp.cell.backbone)) for (const m of c.methods) assert.ok(sp.cell.methods.includes(m), `${c.id}: ${m} searched`);
    }
    for (const c of [...p.cells, ...p.search.map((x) => x.cell)]) {
      assert.ok(c.backbone === 'nsfwjs' || shippedBackbone(c.backbone), `${c.id}: backbone ${c.backbone}`);
      const name = dataNameOf(c, data);
      if (c.subset) await materialiseSubset(c.subset, name);
      // Each source is opened (decoded) once; the splits and shots are checked per cell.
      if (!sources.has(name)) sources.set(name, await openSource(name));
      const ds = makeSplits(sources.get(name)!, { seed: 0, shots: c.shots, val: c.valFraction, test: c.testFraction });
      assert.equal(ds.splits.train.length, c.shots * ds.classes.length, `${c.id}: ${c.shots} shots of every class`);
      assert.ok((ds.splits.val?.length ?? 0) >= ds.classes.length && (ds.splits.test?.length ?? 0) >= ds.classes.length, `${c.id}: val and test`);
      const e = epochsFor(p, ds.splits.train.length);
      assert.ok(e >= p.minEpochs && e <= p.maxEpochs);
    }
  }
  // The subset is fixed: its manifest lists 100 + 30 + 100 images per class.
  const rows = fs.readFileSync(dataNameOf(PROFILES.full.cells.find((c) => c.subset)!, data), 'utf8').trim().split('\n').slice(1);
  assert.equal(rows.length, 10 * 230);
});

test('quantile: linear interpolation between order statistics (numpy default), by hand', () => {
  close(quantile([1, 2, 3, 4], 0.25), 1.75);
  close(quantile([1, 2, 3, 4], 0.5), 2.5);
  close(quantile([10, 20, 30, 40, 50], 0.975), 49);
  close(quantile([7], 0.025), 7);
});

test('paired bootstrap: matches the exact resampling distribution enumerated by brute force', () => {
  const pairs: Pair[] = [
    { group: 'A', cell: 'a1', seed: 0, diff: 0 }, { group: 'A', cell: 'a1', seed: 1, diff: 1 }, { group: 'A', cell: 'a2', seed: 0, diff: 5 },
    { group: 'B', cell: 'b1', seed: 0, diff: 2 }, { group: 'B', cell: 'b1', seed: 1, diff: -4 },
  ];
  // By hand: mean over groups of group means = ((0 + 1 + 5) / 3 + (2 − 4) / 2) / 2 = (2 − 1) / 2.
  close(groupedMean(pairs), 0.5);
  // Every resample within groups is equally likely: 3^3 × 2^2 = 108 of them.
  const A = [0, 1, 5], B = [2, -4];
  const exact: number[] = [];
  for (const i of A) for (const j of A) for (const k of A) for (const l of B) for (const m of B) exact.push(((i + j + k) / 3 + (l + m) / 2) / 2);
  exact.sort((x, y) => x - y);
  const iv = pairedBootstrap(pairs, { resamples: 10_000, seed: 1 });
  close(iv.estimate, 0.5);
  assert.equal(iv.pairs, 5); assert.equal(iv.groups, 2); assert.equal(iv.resamples, 10_000);
  // Each end is a quantile of the exact distribution: at most 2.5% (+ Monte Carlo slack) lies strictly beyond it, at least 2.5% at or beyond it.
  const below = (xs: number[], t: number) => xs.filter((x) => x < t - 1e-12).length / xs.length;
  const atOrBelow = (xs: number[], t: number) => xs.filter((x) => x <= t + 1e-12).length / xs.length;
  const isQuantile = (xs: number[], t: number, q: number) => below(xs, t) <= q + 0.015 && atOrBelow(xs, t) >= q - 0.015;
  assert.ok(isQuantile(exact, iv.lo, 0.025), `lo ${iv.lo}: ${below(exact, iv.lo)} ${atOrBelow(exact, iv.lo)}`);
  assert.ok(isQuantile(exact, iv.hi, 0.975), `hi ${iv.hi}: ${below(exact, iv.hi)} ${atOrBelow(exact, iv.hi)}`);
  // Seeded: the same interval every time; another seed moves it only slightly.
  assert.deepEqual(pairedBootstrap(pairs, { resamples: 10_000, seed: 1 }), iv);
  // One group reduces to the plain paired bootstrap of the mean; its CDF matches the exact one within Monte Carlo error.
  const one = [0, 1, 5, 2].map((d, s) => ({ group: 'g', cell: 'c', seed: s, diff: d }));
  const exact1: number[] = [];
  for (const i of [0, 1, 5, 2]) for (const j of [0, 1, 5, 2]) for (const k of [0, 1, 5, 2]) for (const l of [0, 1, 5, 2]) exact1.push((i + j + k + l) / 4);
  const iv1 = pairedBootstrap(one, { resamples: 10_000, seed: 3 });
  close(iv1.estimate, 2);
  assert.ok(isQuantile(exact1, iv1.lo, 0.025) && isQuantile(exact1, iv1.hi, 0.975), `${iv1.lo} ${iv1.hi}`);
  // By hand: P(mean < 0.5) = P(sum <= 1) = 5/256 < 2.5% <= P(sum <= 2) = 15/256, so the lower end is 0.5.
  close(iv1.lo, 0.5);
});

test('paired bootstrap: degenerate and sign cases', () => {
  const same = [1, 2, 3].map((s) => ({ group: 'g', cell: 'c', seed: s, diff: -3 }));
  const iv = pairedBootstrap(same, { resamples: 500, seed: 0 });
  close(iv.lo, -3); close(iv.hi, -3); assert.equal(iv.excludesZero, true);
  const straddle = [-1, 1, -2, 2].map((d, s) => ({ group: 'g', cell: 'c', seed: s, diff: d }));
  assert.equal(pairedBootstrap(straddle, { resamples: 2000, seed: 0 }).excludesZero, false);
  assert.ok(Number.isNaN(pairedBootstrap([], {}).estimate));
});

test('table arithmetic: mean ± std, error change on shared seeds, dataset average, pairs', () => {
  const rec = (cell: string, group: string, method: string, seed: number, testAcc: number): RunRecord => ({ cell, group, method, seed, valAcc: 0, testAcc });
  const runs: RunRecord[] = [
    rec('c1', 'G1', 'finetune', 0, 0.8), rec('c1', 'G1', 'finetune', 1, 0.7), rec('c1', 'G1', 'finetune', 2, 0.9),
    rec('c1', 'G1', 'adafilter', 0, 0.85), rec('c1', 'G1', 'adafilter', 1, 0.75), rec('c1', 'G1', 'adafilter', 2, 0.8),
    // c2: adafilter finished seed 0 only; its change uses that seed alone.
    rec('c2', 'G1', 'finetune', 0, 0.5), rec('c2', 'G1', 'finetune', 1, 0.6), rec('c2', 'G1', 'adafilter', 0, 0.56),
    rec('c3', 'G2', 'finetune', 0, 0.9), rec('c3', 'G2', 'adafilter', 0, 0.89),
  ];
  const t1 = cellTable(runs.filter((r) => r.cell === 'c1'), ['finetune', 'adafilter', 'bss']);
  assert.deepEqual(t1.map((r) => r.method), ['finetune', 'adafilter'], 'methods without runs are left out');
  close(t1[0].mean, 80); close(t1[0].std, 10); close(t1[0].errorChange!, 0);
  close(t1[1].mean, 80); close(t1[1].std, 5);
  // Errors: finetune 20, 30, 10; adafilter 15, 25, 20 → changes −5, −5, +10 → mean 0.
  close(t1[1].errorChange!, 0);
  const t2 = cellTable(runs.filter((r) => r.cell === 'c2'), ['finetune', 'adafilter']);
  close(t2[1].errorChange!, -6); assert.equal(t2[1].n, 1); close(t2[0].mean, 55);
  const t3 = cellTable(runs.filter((r) => r.cell === 'c3'), ['finetune', 'adafilter']);
  close(t3[1].errorChange!, 1);
  const d = datasetTable(new Map([['c1', t1], ['c2', t2], ['c3', t3]]), new Map([['c1', 'G1'], ['c2', 'G1'], ['c3', 'G2']]), ['finetune', 'adafilter', 'bss']);
  assert.deepEqual(d.groups, ['G1', 'G2']);
  close(d.perGroup.G1.adafilter!, -3); close(d.perGroup.G2.adafilter!, 1);
  close(d.average.adafilter.value!, -1); assert.equal(d.average.adafilter.groups, 2);
  assert.equal(d.average.bss.value, null);
  const pairs = errorPairs(runs, 'adafilter');
  assert.equal(pairs.length, 5);
  assert.deepEqual(pairs.map((p) => Math.round(p.diff * 1e6) / 1e6), [-5, -5, 10, -6, 1]);
  // Grouped mean: G1 (−5 −5 +10 −6)/4 = −1.5, G2 +1 → −0.25 (differs from the table's −1 because G1's cells have unequal seeds).
  close(groupedMean(pairs), -0.25);
  const fr = layerFractions([
    { fraction: 0.5, layers: [{ name: 'a', filters: 4, fraction: 0.25, filtersVarying: 0, exampleStd: 0 }, { name: 'b', filters: 4, fraction: 0.75, filtersVarying: 1, exampleStd: 0.1 }] },
    { fraction: 0.7, layers: [{ name: 'a', filters: 4, fraction: 0.75, filtersVarying: 0.5, exampleStd: 0 }, { name: 'b', filters: 4, fraction: 0.65, filtersVarying: 1, exampleStd: 0.3 }] },
  ])!;
  close(fr.overall, 0.6); close(fr.layers[0].fraction, 0.5); close(fr.layers[1].fraction, 0.7); close(fr.layers[1].exampleStd, 0.2);
  close(fr.layers[0].fractionStd, Math.sqrt(0.125));
});

test('end to end: a tiny profile trains, writes the JSON and the markdown, and resumes without training', async () => {
  const out = tmpDir('e2e');
  const cell = { id: 'qd-3shot', group: 'QD', data: 'quickdraw:300-302', shots: 3, backbone: 'resnet20', inputSize: 16, methods: ['finetune', 'adafilter'], valFraction: 0.1 };
  const tiny: Profile = {
    name: 'tiny', description: 'test', seeds: 1, batch: 8, epochImages: 9, minEpochs: 1, maxEpochs: 1,
    search: [{ cell: { ...cell, id: 'dev', data: 'quickdraw:303-305' }, grids: { finetune: [{ lr: 0.01 }], adafilter: [{ lr: 0.01, gateLr: 0.1 }] } }],
    fixed: { finetune: { lr: 0.02 }, adafilter: { lr: 0.02, gateLr: 0.02 } },
    cells: [
      cell, { ...cell, id: 'qd-3shot-tau', group: 'QD tau', methods: ['adafilter'], methodOptions: { adafilter: { tau: 0.5 } }, baselineCell: 'qd-3shot' },
      { ...cell, id: 'qd-3shot-glr', group: 'QD gate lr', methods: ['adafilter'], trial: { lr: 0.01, gateLr: 0.5 }, baselineCell: 'qd-3shot' },
    ],
    methodOrder: ['finetune', 'adafilter'], cuts: ['nearly everything'],
  };
  const lines: string[] = [];
  const s = await runTransfer({ profile: tiny, out, jobs: 2, threads: 1, log: (l) => lines.push(l), command: 'test' });
  assert.deepEqual(s.failures, [], lines.join('\n'));
  assert.equal(s.runs.length, 4);
  // The variant ran with its option and is compared with the base cell's finetune, seed by seed.
  const tau = JSON.parse(fs.readFileSync(path.join(out, 'cells', 'qd-3shot-tau', 'adafilter-s0', 'run.json'), 'utf8'));
  assert.deepEqual(tau.methodOptions, { tau: 0.5 });
  const tauRun = s.runs.find((r) => r.cell === 'qd-3shot-tau')!;
  // A cell's own trial overrides the searched setting for its methods.
  const glrRun = s.runs.find((r) => r.cell === 'qd-3shot-glr')!;
  assert.deepEqual([glrRun.lr, glrRun.gateLr], [0.01, 0.5]);
  assert.deepEqual(s.missing, []);
  assert.equal(s.chosen.resnet20.adafilter.from, 'search');
  assert.equal(s.chosen.resnet20.adafilter.gateLr, 0.1);
  assert.equal(s.search[0].trials.length, 2);
  const ada = s.runs.find((r) => r.method === 'adafilter')!;
  assert.equal(ada.gateLr, 0.1);
  assert.ok(ada.gates && ada.gates.layers.length === 18, 'per-layer gate fractions recorded for resnet20');
  assert.ok(s.gateFractions.byCell['qd-3shot']);
  assert.equal(s.gateFractions.overall, null, 'overall fractions cover the default backbone only');
  const ft = s.runs.find((r) => r.method === 'finetune')!;
  close(s.tables.cells['qd-3shot'].find((r) => r.method === 'adafilter')!.errorChange!, 100 * (ft.testAcc - ada.testAcc), 1e-9);
  close(s.tables.cells['qd-3shot-tau'].find((r) => r.method === 'adafilter')!.errorChange!, 100 * (ft.testAcc - tauRun.testAcc), 1e-9);
  // Three groups (QD, QD tau, QD gate lr), one pair each: the average of the three changes.
  close(s.intervals.adafilter.estimate, 100 * (ft.testAcc - (ada.testAcc + tauRun.testAcc + glrRun.testAcc) / 3), 1e-9);
  const json = JSON.parse(fs.readFileSync(path.join(out, 'transfer-tiny.json'), 'utf8'));
  assert.equal(json.format, 'adafilter-transfer');
  const md = fs.readFileSync(path.join(out, 'results-tiny.md'), 'utf8');
  for (const want of ['## Answer', 'Hyper-parameter search', 'Paired bootstrap', 'fraction of filters fine-tuned', 'qd-3shot', 'Nothing: every planned run finished']) {
    assert.ok(md.includes(want), `results.md has '${want}'`);
  }
  // Rebuilding from the run folders trains nothing and gives the same numbers.
  const again = await runTransfer({ profile: tiny, out, jobs: 1, threads: 1, train: false, log: () => {} });
  assert.deepEqual(again.runs, s.runs);
  assert.equal(again.command, 'test', 'a rebuild keeps the command that trained');
  assert.equal(again.startedAt, s.startedAt);
  // Publishing keeps a hand-written discussion.
  const docs = tmpDir('docs');
  fs.writeFileSync(path.join(docs, 'results.md'), `old\n${DISCUSSION_START}\nMy reading.\n${DISCUSSION_END}\n`);
  publishResults(again, docs);
  const pub = fs.readFileSync(path.join(docs, 'results.md'), 'utf8');
  assert.ok(pub.includes('My reading.') && pub.includes('## Answer'));
  assert.ok(fs.existsSync(path.join(docs, 'results', 'transfer-tiny.json')));
});

test('cli: bench transfer refuses an unknown profile with one line and exit 2', () => {
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const cli = path.resolve(__dirname, '..', '..', '..', 'bin', 'adafilter.js');
  for (const [args, re] of [[['--profile', 'huge'], /--profile must be one of quick, full, variants, budget, budget-variants, budget6, shots100, fidelity-search, fidelity, backbones, probe, related, bf16, defaults, got 'huge'/], [[], /--profile must be one of/], [['--profile', 'quick', '--jobs', '0'], /--jobs: expected an integer >= 1/],
    [['--profile', 'full', '--backbones', 'default'], /--backbones is for --profile probe, not 'full'/], [['--profile', 'probe', '--backbones', 'default,,x'], /comma-separated list/],
    [['--profile', 'probe', '--backbones', '/a/v2.safetensors,/b/v2.safetensors'], /two backbones are both called 'v2'/],
    [['--profile', 'full', '--cells', 'x'], /--cells is for --profile defaults, not 'full'/],
    [['--profile', 'defaults', '--cells', 'mnist-5shot,nope'], /'nope' is not a cell of profile defaults; its cells: heldout-quickdraw335, .*devanagari-20shot$/m],
    [['--profile', 'defaults', '--cells', 'mnist-5shot,mnist-5shot'], /names a cell twice/]] as [string[], RegExp][]) {
    const r = spawnSync(process.execPath, [cli, 'bench', 'transfer', ...args], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
});

test('probe profile: linear-probe only, every fidelity resnet20 cell once per backbone, named after the file', async () => {
  const { probeProfile, PROFILES } = await import('../../bench/transfer-suite');
  const p = probeProfile(['doodles-resnet20', '/tmp/cand/wide-10ep.safetensors']);
  const base = PROFILES.fidelity.cells.filter((c) => c.backbone === 'doodles-resnet20');
  assert.equal(p.cells.length, 2 * base.length);
  assert.ok(p.cells.every((c) => c.methods.length === 1 && c.methods[0] === 'linear-probe'));
  const wide = p.cells.filter((c) => c.backbone === '/tmp/cand/wide-10ep.safetensors');
  assert.deepEqual(wide.map((c) => c.id), base.map((c) => `${c.id}@wide-10ep`));
  assert.equal(new Set(p.cells.map((c) => c.id)).size, p.cells.length);
});

test('probe headline: per-cell means of seeds, averaged per backbone, against doodles-resnet20 and the +10 goal', async () => {
  const { probeHeadline, probeMeans } = await import('../../bench/transfer-report');
  const cell = (id: string, backbone: string) => ({ id, backbone, methods: ['linear-probe'], skipped: null });
  const run = (c: string, seed: number, testAcc: number) => ({ cell: c, method: 'linear-probe', seed, testAcc });
  const summary = (defaultAccs: number[][]) => ({
    profile: 'probe', settings: { seeds: 3 },
    cells: [cell('a@doodles-resnet20', 'doodles-resnet20'), cell('b@doodles-resnet20', 'doodles-resnet20'), cell('a@default', 'default'), cell('b@default', 'default')],
    // Cell a has 3 seeds and b one: a mean over runs would weight a three times.
    runs: [run('a@doodles-resnet20', 0, 0.6), run('a@doodles-resnet20', 1, 0.6), run('a@doodles-resnet20', 2, 0.6), run('b@doodles-resnet20', 0, 0.8),
      ...defaultAccs.flatMap((accs, i) => accs.map((a, seed) => run(`${'ab'[i]}@default`, seed, a)))],
  }) as unknown as Parameters<typeof probeHeadline>[0];
  const met = summary([[0.8, 0.8, 0.8], [0.9]]);
  assert.deepEqual(probeMeans(met).map((r) => [r.backbone, Math.round(r.mean! * 100) / 100, r.cells]), [['doodles-resnet20', 70, 2], ['default', 85, 2]]);
  assert.match(probeHeadline(met), /doodles-resnet20 70\.00%; default 85\.00% \(\+15\.00\)\. Issue 15's goal .* \*\*met\*\*/);
  assert.match(probeHeadline(summary([[0.7, 0.7, 0.7], [0.9]])), /default 80\.00% \(\+10\.00\)\. .*\*\*met\*\*/);
  assert.match(probeHeadline(summary([[0.7, 0.7, 0.68], [0.9]])), /\*\*not met\*\*/);
  // A backbone with cells unfinished is not compared.
  const part = probeHeadline(summary([[0.9]]));
  assert.match(part, /default 90\.00% \(1 of 2 cells\)\.$/);
});

test('encodePng: sharp decodes it to the same pixels', async () => {
  const sharp = (await import('sharp')).default;
  const { encodePng } = await import('../../bench/transfer-data');
  for (const channels of [1, 3] as const) {
    const w = 5, h = 3;
    const px = Uint8Array.from({ length: w * h * channels }, (_, i) => (i * 37) % 256);
    const meta = await sharp(encodePng(px, w, h, channels)).metadata();
    assert.deepEqual([meta.width, meta.height, meta.channels, meta.depth], [w, h, channels, 'uchar']);
    const { data } = await sharp(encodePng(px, w, h, channels)).raw().toBuffer({ resolveWithObject: true });
    // sharp widens gray to RGB on raw output: compare the first channel then.
    const got = channels === 3 ? Uint8Array.from(data) : Uint8Array.from({ length: w * h }, (_, i) => data[i * (data.length / (w * h))]);
    assert.deepEqual(got, px);
  }
});

test('variants profile: report-only on an empty folder lists everything as missing and renders', async () => {
  const out = tmpDir('variants');
  const s = await runTransfer({ profile: PROFILES.variants, out, jobs: 1, train: false, log: () => {} });
  assert.equal(s.kind, 'variants');
  assert.equal(s.runs.length, 0);
  assert.ok(s.missing.some((m) => m.cell === 'quickdraw300-20shot-tau0.5'));
  const md = fs.readFileSync(path.join(out, 'results-variants.md'), 'utf8');
  assert.match(md, /exploratory, one cell/);
  assert.ok(!md.includes('average over datasets**'), 'no average over variants');
});
