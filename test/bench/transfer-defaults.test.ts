/**
 * The defaults profile (issue 14's acceptance measurement): what it plans, the made-up folders it
 * writes, and one tiny real run of a grid, the default and --auto through the worker processes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { CellSpec, DefaultsSpec, Profile, PROFILES } from '../../bench/transfer-suite';
import { backboneDigest, binomialSe, cellFinished, DefaultsReport, gridFor, materialiseFolder, mergeDefaults, runOptions, withinPoints } from '../../bench/transfer-defaults';
import { publishResults, runTransfer } from '../../bench/transfer';
import { onlyCells } from '../../bench/command';
import { headline } from '../../bench/transfer-report';
import { openDataset } from '../../src/data/registry';
import { resolveOptions } from '../../src/train/options';
import { searchGrid } from '../../src/train/search';
import { close, tmpDir } from './helpers';

const strip = (o: object) => { const { out: _o, ...r } = resolveOptions(o as never); return r; };

test('defaults profile: the benchmark\'s 12 resnet20 cells and 2 made-up folders (held-out test beside them) on the default backbone, a 3 × 3 grid whose centre is the default run', () => {
  const p = PROFILES.defaults, d = p.defaults!;
  assert.equal(p.cells.length, 0, 'no comparison cells: the grid is its own plan');
  assert.equal(d.cells.length, 14);
  const resnet20Cells = PROFILES.fidelity.cells.filter((c) => c.backbone === 'doodles-resnet20').map((c) => c.id).sort();
  assert.equal(resnet20Cells.length, 12);
  assert.deepEqual(d.cells.filter((c) => !c.folder).map((c) => c.id).sort(), resnet20Cells, 'every benchmark resnet20 cell, once');
  assert.deepEqual(d.methods, ['finetune', 'adafilter']);
  assert.equal(p.seeds, 1);
  const fid = PROFILES.fidelity.cells;
  for (const c of d.cells) {
    assert.equal(c.backbone, 'default');
    if (c.folder) continue;
    const f = fid.find((x) => x.id === c.id)!;
    assert.ok(f, `${c.id} is a benchmark cell`);
    assert.deepEqual([c.data, c.subset, c.shots, c.valFraction, c.testFraction], [f.data, f.subset, f.shots, f.valFraction, f.testFraction]);
  }
  const folders = d.cells.filter((c) => c.folder);
  assert.equal(folders.length, 2);
  const qd = folders.find((c) => c.folder!.source.startsWith('quickdraw:'))!;
  const [lo, hi] = qd.folder!.source.slice('quickdraw:'.length).split('-').map(Number);
  for (let k = lo; k <= hi; k++) assert.ok(k > 244 && !(k >= 300 && k <= 309) && !(k >= 320 && k <= 329), `class ${k} is used nowhere else`);
  assert.equal(hi - lo + 1, 5);
  assert.ok(folders.some((c) => c.folder!.size && c.folder!.size !== 28), 'one folder at another image size');
  for (const c of folders) assert.deepEqual([c.folder!.perClass, c.folder!.testPerClass], [10, 90]);

  for (const m of d.methods) {
    const g = gridFor(d, m, 504);
    assert.equal(g.points.length, 9);
    assert.deepEqual([...new Set(g.points.map((x) => x.lr))].sort(), [0.003, 0.03, null].sort());
    assert.deepEqual([...new Set(g.points.map((x) => x.steps))], [252, null, 1008]);
    const centre = g.points.find((x) => x.key === g.defaultIs)!;
    assert.deepEqual([centre.lr, centre.steps], [null, null]);
    // The centre is the plain default run: the same resolved options, flag for flag.
    const cell = { ...d.cells[0], dataName: 'quickdraw:300-309', trainSize: 200, defaultSteps: 504, autoFolds: 1, budgetRule: '', grid: {} };
    assert.deepEqual(strip(runOptions(cell, m, 0, 1, '/x', centre)), strip(runOptions(cell, m, 0, 1, '/x')));
    // The gate lr follows the method's default ratio: left to the trainer.
    const ratio = resolveOptions({ data: 'x', method: m }).gateLr / 0.01;
    for (const x of g.points) close(strip(runOptions(cell, m, 0, 1, '/x', x)).gateLr, (x.lr ?? 0.01) * ratio, 1e-12);
    // Continued from --auto's trials exactly where their resolved lr, gate lr and budget are the point's.
    const trials = searchGrid(m).map((t) => ({ ...resolveOptions({ data: 'x', method: m, lr: t.lr, gateLr: t.gateLr }), budget: t.budget ?? 1 }));
    for (const x of g.points) {
      const r = resolveOptions({ data: 'x', method: m, ...(x.lr !== null ? { lr: x.lr } : {}) });
      const k = trials.findIndex((t) => t.lr === r.lr && t.gateLr === r.gateLr && t.headLr === r.headLr && t.budget === x.budgetFactor);
      assert.equal(x.fromTrial, k < 0 ? null : k, `${m} ${x.key}`);
    }
    // --auto's trials are the default-budget and the 2× columns for both methods (gated trials keep the gate ratio).
    assert.deepEqual(g.points.filter((x) => x.steps === null).map((x) => x.fromTrial), [0, 1, 2], m);
    assert.deepEqual(g.points.filter((x) => x.budgetFactor === 2).map((x) => x.fromTrial), [3, 4, 5], m);
    assert.deepEqual(g.points.filter((x) => x.budgetFactor === 0.5).map((x) => x.fromTrial), [null, null, null], m);
    // Where --auto cross-validates, its trials trained on other images: no point continues one.
    assert.ok(gridFor(d, m, 504, 3).points.every((x) => x.fromTrial === null), m);
  }
});

test('made-up folders: written once, the same bytes every time, read through the folder source at their size', async () => {
  const d = PROFILES.defaults.defaults!;
  for (const c of d.cells.filter((x) => x.folder)) {
    const a = await materialiseFolder(c.folder!, path.join(tmpDir('fa'), 'f'));
    const b = await materialiseFolder(c.folder!, path.join(tmpDir('fb'), 'f'));
    const list = (dir: string) => fs.readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.png')).sort();
    assert.deepEqual(list(a), list(b));
    for (const f of list(a)) assert.ok(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), `${f}: same bytes`);
    assert.ok(!fs.existsSync(`${a}.partial`));
    const ds = await openDataset(`folder:${a}`, { seed: 0 });
    const k = ds.classes.length;
    // train/ holds the user's 10 per class, validation carved from them; test/ is kept whole.
    assert.deepEqual(fs.readdirSync(a).sort(), ['test', 'train']);
    assert.equal(ds.splits.train.length + ds.splits.val!.length, 10 * k);
    assert.equal(ds.splits.val!.length, k, 'one validation image per class');
    assert.equal(ds.splits.test!.length, 90 * k);
    assert.equal(list(a).length, 100 * k);
    // No image is both a training and a test image.
    const names = (s: string) => new Set(fs.readdirSync(path.join(a, s), { recursive: true }).map(String).filter((f) => f.endsWith('.png')));
    const tr = names('train');
    for (const f of names('test')) assert.ok(!tr.has(f), `${f} in both train/ and test/`);
    const meta = await sharp(path.join(a, list(a)[0])).metadata();
    assert.equal(meta.width, c.folder!.size ?? 28);
    assert.equal(meta.height, c.folder!.size ?? 28);
  }
});

test('end to end: a grid point, the default (= the grid centre, continued from --auto\'s trial) and --auto through the workers; the gap arithmetic', async () => {
  const out = tmpDir('run');
  const cell: CellSpec = { id: 'qd-3shot', group: 'QD', data: 'quickdraw:300-302', shots: 3, backbone: 'resnet20', inputSize: 16, methods: ['finetune'], valFraction: 0.1 };
  const spec: DefaultsSpec = { cells: [cell], methods: ['finetune'], lrFactors: [1], budgetFactors: [0.5, 1], defaultGap: 2, autoGap: 1 };
  const tiny: Profile = { ...PROFILES.defaults, name: 'tiny-defaults', defaults: spec };
  const lines: string[] = [];
  const s = await runTransfer({ profile: tiny, out, jobs: 2, threads: 1, log: (l) => lines.push(l), command: 'test' });
  assert.deepEqual(s.failures, [], lines.join('\n'));
  const d = s.defaults!;
  assert.equal(d.cells[0].defaultSteps, 500, '9 images at batch 32: the 500-step floor');
  assert.equal(d.plannedTrainings, 6 + 1, '--auto\'s 6 trials and the 0.5× point');
  assert.equal(d.reusedRuns, 2, 'the centre from trial 1, and the default as the centre');
  assert.equal(d.runs.length, 2);
  const half = d.runs.find((r) => r.budgetFactor === 0.5)!, centre = d.runs.find((r) => r.budgetFactor === 1)!;
  assert.deepEqual([half.steps, centre.steps, centre.continuedFromTrial, half.continuedFromTrial], [250, 500, 1, null]);
  assert.deepEqual([half.lr, centre.lr], [0.01, 0.01]);
  const centreDir = path.join(out, 'defaults', 'qd-3shot', 'finetune', d.cells[0].grid.finetune.defaultIs!);
  const trialDir = path.join(out, 'defaults', 'qd-3shot', 'finetune', 'auto', 'trials', '1');
  assert.ok(fs.readFileSync(path.join(centreDir, 'model.safetensors')).equals(fs.readFileSync(path.join(trialDir, 'model.safetensors'))));
  const centreResult = JSON.parse(fs.readFileSync(path.join(centreDir, 'result.json'), 'utf8'));
  assert.equal(centre.testAcc, centreResult.test.acc);
  const search = JSON.parse(fs.readFileSync(path.join(out, 'defaults', 'qd-3shot', 'finetune', 'auto', 'search.json'), 'utf8'));
  const auto = JSON.parse(fs.readFileSync(path.join(out, 'defaults', 'qd-3shot', 'finetune', 'auto', 'result.json'), 'utf8'));
  assert.equal(search.trials.length, 6);
  // --auto's final run continues its chosen trial as the centre continues trial 1: the same trial gives the same score.
  if (search.chosen === 1) assert.equal(auto.test.acc, centre.testAcc);

  assert.equal(d.gaps.length, 1);
  const g = d.gaps[0];
  const bestT = half.testAcc >= centre.testAcc ? half : centre; // ties: the earlier point (0.5× comes first)
  assert.equal(g.bestByTest!.point, bestT.point);
  const byVal = centre.valAcc > half.valAcc || (centre.valAcc === half.valAcc && centre.valLoss < half.valLoss) ? centre : half;
  assert.equal(g.bestByVal!.point, byVal.point);
  close(g.defaultGap!, 100 * (bestT.testAcc - centre.testAcc));
  assert.equal(centre.testImages, centreResult.test.examples);
  close(g.testSe!, 100 * Math.sqrt(bestT.testAcc * (1 - bestT.testAcc) / centreResult.test.examples));
  close(g.autoGap!, 100 * (bestT.testAcc - auto.test.acc));
  assert.equal(g.default!.sameRunAs, centre.point);
  assert.equal(g.defaultMeets, g.defaultGap! <= 2);
  assert.equal(g.autoMeets, g.autoGap! <= 1);
  assert.deepEqual([g.auto!.lr, g.auto!.chosenTrial], [search.lr, search.chosen]);
  assert.equal(d.summary.rows, 1);
  close(d.summary.meanDefaultGap!, g.defaultGap!);
  assert.ok(g.defaultGap! >= 0, 'the default is a grid point');
  assert.match(headline(s), /oracle/);
  // A pair without its runs counts against the acceptance, even when every finished pair meets it.
  const allMeet = { ...d, gaps: d.gaps.map((x) => ({ ...x, defaultMeets: true, autoMeets: true })), summary: { ...d.summary, defaultMeets: 1, autoMeets: 1 } };
  assert.match(headline({ ...s, defaults: allMeet }), /acceptance \*\*met\*\*/);
  const unfinished = { ...allMeet, gaps: [...allMeet.gaps, { ...allMeet.gaps[0], cell: 'other', defaultGap: null, autoGap: null }] };
  assert.match(headline({ ...s, defaults: unfinished }), /1 of 2 pairs not finished; acceptance \*\*not met\*\*/);
  const md = fs.readFileSync(path.join(out, 'results-tiny-defaults.md'), 'utf8');
  for (const want of ['Gaps: default and --auto', '**test** accuracy', 'best point by **validation**', `(= ${centre.point})`]) assert.ok(md.includes(want), `results has '${want}'`);

  // Report only: nothing trains, the same report from the folders.
  const again = await runTransfer({ profile: tiny, out, jobs: 1, threads: 1, train: false, log: () => {} });
  assert.deepEqual(again.defaults, s.defaults);

  // --cells: a profile with a second cell that measures only the first (report only: nothing trains) counts the other as not measured.
  const other: CellSpec = { ...cell, id: 'qd-other', data: 'quickdraw:303-305' };
  const two: Profile = { ...tiny, defaults: { ...spec, cells: [cell, other] } };
  const part = await runTransfer({ profile: onlyCells(two, 'qd-3shot'), out, jobs: 1, threads: 1, train: false, log: () => {} });
  assert.deepEqual(part.defaults!.profileCells, ['qd-3shot', 'qd-other']);
  assert.deepEqual(part.defaults!.cells.map((c) => c.id), ['qd-3shot']);
  assert.ok(!fs.existsSync(path.join(out, 'defaults', 'qd-other')), 'the cell left out is not planned or trained');
  const allMet = { ...part.defaults!, gaps: part.defaults!.gaps.map((x) => ({ ...x, defaultMeets: true, autoMeets: true })), summary: { ...part.defaults!.summary, defaultMeets: 1, autoMeets: 1 } };
  assert.match(headline({ ...part, defaults: allMet }), /1 of 2 cells not measured \(qd-other\); acceptance \*\*not met\*\*/);

  // Publishing across sittings: a published finished cell this run lacks stays while its backbone's weights are the same ones.
  const m = s.defaults!.cells[0].measured;
  assert.equal(m.backboneSha256, null, 'a backbone built from code has no weights file');
  assert.ok(m.lastResultAt !== null && Date.parse(m.lastResultAt) <= Date.now());
  assert.equal(m.plannedTrainings, d.plannedTrainings);
  const renamed = (r: DefaultsReport, id: string, sha: string | null): DefaultsReport => ({
    ...r, profileCells: [cell.id, id],
    cells: r.cells.map((c) => ({ ...c, id, measured: { ...c.measured, backboneSha256: sha } })),
    runs: r.runs.map((x) => ({ ...x, cell: id })), gaps: r.gaps.map((x) => ({ ...x, cell: id })),
  });
  const published = renamed(s.defaults!, 'qd-other', 'aa');
  const next = { ...s.defaults!, profileCells: [cell.id, 'qd-other'] };
  const merged = mergeDefaults(published, next, () => 'aa');
  assert.deepEqual([merged.kept, merged.dropped], [['qd-other'], []]);
  assert.deepEqual(merged.report.cells.map((c) => c.id), ['qd-3shot', 'qd-other'], 'in the profile\'s order');
  assert.deepEqual(merged.report.gaps.map((g) => g.cell), ['qd-3shot', 'qd-other']);
  assert.equal(merged.report.runs.length, 2 * s.defaults!.runs.length);
  assert.equal(merged.report.summary.rows, 2);
  assert.equal(merged.report.plannedTrainings, 2 * d.plannedTrainings);
  close(merged.report.summary.meanDefaultGap!, d.summary.meanDefaultGap!);
  // Other weights now: the published cell is dropped.
  const stale = mergeDefaults(published, next, () => 'bb');
  assert.deepEqual([stale.kept, stale.dropped, stale.report.cells.map((c) => c.id)], [[], ['qd-other'], ['qd-3shot']]);
  // A cell this run has not finished takes the published, finished one; one it has finished replaces it.
  const unfinishedHere: DefaultsReport = { ...next, gaps: next.gaps.map((g) => ({ ...g, autoGap: null })) };
  assert.ok(!cellFinished(unfinishedHere, 'qd-3shot'));
  const back = mergeDefaults(renamed(s.defaults!, 'qd-3shot', 'aa'), unfinishedHere, () => 'aa');
  assert.deepEqual(back.kept, ['qd-3shot']);
  assert.ok(cellFinished(back.report, 'qd-3shot'));
  assert.deepEqual(mergeDefaults(renamed(s.defaults!, 'qd-3shot', 'aa'), next, () => 'aa').kept, []);
  // Another grid is another measurement: nothing is kept.
  assert.deepEqual(mergeDefaults({ ...published, lrFactors: [0.3, 1] }, next, () => 'aa').kept, []);
  // publishResults merges with what DOCS/results holds (here: the published cell on the shipped default, whose digest is today's).
  const docs = tmpDir('docs');
  fs.mkdirSync(path.join(docs, 'results'));
  const onDefault = renamed(s.defaults!, 'qd-other', backboneDigest('default'));
  onDefault.cells = onDefault.cells.map((c) => ({ ...c, backbone: 'default' }));
  fs.writeFileSync(path.join(docs, 'results', `transfer-${s.profile}.json`), JSON.stringify({ ...s, defaults: onDefault }));
  const logs: string[] = [];
  publishResults({ ...s, defaults: next }, docs, (l) => logs.push(l));
  const pub = JSON.parse(fs.readFileSync(path.join(docs, 'results', `transfer-${s.profile}.json`), 'utf8'));
  assert.deepEqual(pub.defaults.cells.map((c: { id: string }) => c.id), ['qd-3shot', 'qd-other']);
  assert.deepEqual(logs, ['kept the published cells this run lacks: qd-other']);
  assert.match(fs.readFileSync(path.join(docs, 'results.md'), 'utf8'), /qd-other/);
});

test('backboneDigest: the SHA-256 of a shipped backbone\'s weights file, or of a path', () => {
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  const { shippedBackbone } = require('../../src/train/shipped') as typeof import('../../src/train/shipped');
  const file = shippedBackbone('default')!.file;
  const want = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  assert.equal(backboneDigest('default'), want);
  assert.equal(backboneDigest(file), want);
  assert.notEqual(backboneDigest('doodles-resnet20'), want);
  assert.equal(backboneDigest('resnet20'), null);
});

test('binomialSe: hand-computed values', () => {
  close(binomialSe(0.75, 200), 100 * Math.sqrt(0.1875 / 200)); // 3.06 points
  assert.ok(Math.abs(binomialSe(0.75, 200) - 3.0619) < 1e-4);
  assert.equal(binomialSe(1, 120), 0);
  close(binomialSe(0.5, 100), 5);
});

test('gap bounds: a gap of exactly the bound, computed from test counts, is within it; one image more is not', () => {
  const gap = (a: number, b: number, n: number) => 100 * (a / n - b / n);
  assert.ok(gap(376, 367, 450) > 2, 'the float artefact this guards against');
  assert.ok(withinPoints(gap(376, 367, 450), 2));
  assert.ok(!withinPoints(gap(377, 367, 450), 2));
  assert.ok(withinPoints(gap(101, 99, 200), 1));
  assert.ok(!withinPoints(gap(102, 99, 200), 1));
});
