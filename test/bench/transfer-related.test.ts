/**
 * The related (issue 19: gna, select) and bf16 (issue 16) profiles: what they plan, and one tiny
 * real run of a select cell and a bf16 cell through the worker processes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CellSpec, epochsFor, Profile, PROFILES, seedsOf } from '../../bench/transfer-suite';
import { runTransfer } from '../../bench/transfer';
import { close, tmpDir } from './helpers';

const sameTarget = (a: CellSpec, b: CellSpec) => assert.deepEqual(
    [a.data, a.subset, a.shots, a.backbone, a.valFraction, a.testFraction, a.inputSize, a.fixedEpochs],
    [b.data, b.subset, b.shots, b.backbone, b.valFraction, b.testFraction, b.inputSize, b.fixedEpochs], `${a.id} is ${b.id}'s target`);
const budget = (p: Profile) => [p.epochImages, p.minEpochs, p.maxEpochs, p.batch];

test('related profile: fidelity\'s 12 resnet20 cells, gna and select against finetune, l2sp, bss, 3 seeds, fidelity\'s budget', () => {
  const fid = PROFILES.fidelity, rel = PROFILES.related;
  const resnet = fid.cells.filter((c) => c.backbone === 'doodles-resnet20');
  assert.equal(resnet.length, 12);
  // Same ids: in fidelity's --out its finished finetune runs are read, not trained again.
  assert.deepEqual(rel.cells.map((c) => c.id), resnet.map((c) => c.id));
  for (const c of rel.cells) {
    sameTarget(c, fid.cells.find((x) => x.id === c.id)!);
    assert.deepEqual([...c.methods].sort(), ['bss', 'finetune', 'gna', 'l2sp', 'select']);
    for (const m of c.methods) assert.equal(seedsOf(rel, c, m), 3, `${c.id}/${m}: 3 seeds`);
    assert.equal(c.precision, undefined);
  }
  assert.deepEqual(budget(rel), budget(fid));
  for (const n of [10, 50, 200]) assert.equal(epochsFor(rel, n), epochsFor(fid, n));
  assert.deepEqual(rel.fixed.gna, { lr: 0.03 });
  for (const m of ['finetune', 'l2sp', 'bss']) assert.deepEqual(rel.fixed[m], fid.fixed[m], `${m}: fidelity's setting`);
  assert.deepEqual(rel.search, []);
  assert.deepEqual(rel.select, { population: 8, generations: 5 });
});

test('bf16 profile: fidelity\'s Quick Draw 20-shot and a glyph cell, finetune and adafilter, 3 seeds in fp32 and in bf16', () => {
  const fid = PROFILES.fidelity, p = PROFILES.bf16;
  assert.equal(p.cells.length, 4);
  const fp32 = p.cells.filter((c) => c.precision === 'fp32'), bf16 = p.cells.filter((c) => c.precision === 'bf16');
  assert.deepEqual(fp32.map((c) => c.id), ['quickdraw300-20shot', 'devanagari-5shot']);
  assert.equal(fp32[0].shots, 20, 'the Quick Draw cell is the 20-shot one');
  assert.ok(fp32.some((c) => c.data?.startsWith('glyphs:')) && fp32.some((c) => c.data?.startsWith('quickdraw:')));
  assert.deepEqual(bf16.map((c) => c.fp32Cell), fp32.map((c) => c.id), 'every bf16 cell names its fp32 twin');
  for (const c of p.cells) {
    const f = fid.cells.find((x) => x.id === (c.fp32Cell ?? c.id))!;
    sameTarget(c, f);
    assert.deepEqual(c.methods, ['finetune', 'adafilter']);
    for (const m of c.methods) assert.equal(seedsOf(p, c, m), 3);
  }
  assert.equal(new Set(p.cells.map((c) => c.group)).size, 4, 'each precision is its own row in the tables');
  assert.deepEqual(budget(p), budget(fid));
  for (const m of ['finetune', 'adafilter']) assert.deepEqual(p.fixed[m], fid.fixed[m], `${m}: fidelity's lr`);
  assert.deepEqual(p.search, []);
});

test('end to end: a select cell and a bf16 cell run through the workers, rows carry precision and cost, the precision table pairs them', async () => {
  const out = tmpDir('related');
  const cell: CellSpec = { id: 'qd-3shot', group: 'QD', data: 'quickdraw:300-302', shots: 3, backbone: 'resnet20', methods: ['finetune', 'select'], valFraction: 0.1, precision: 'fp32' };
  const tiny: Profile = {
    name: 'tiny-related', description: 'test', seeds: 1, batch: 8, epochImages: 9, minEpochs: 1, maxEpochs: 1,
    search: [], fixed: { finetune: { lr: 0.01 } },
    cells: [cell, { ...cell, id: 'qd-3shot-bf16', group: 'QD (bf16)', methods: ['finetune'], precision: 'bf16', fp32Cell: 'qd-3shot' }],
    methodOrder: ['finetune', 'select'], cuts: [], select: { population: 2, generations: 1, epochs: 1 },
  };
  const lines: string[] = [];
  const s = await runTransfer({ profile: tiny, out, jobs: 2, threads: 1, log: (l) => lines.push(l), command: 'test' });
  assert.deepEqual(s.failures, [], lines.join('\n'));
  assert.deepEqual(s.missing, []);
  assert.equal(s.runs.length, 3);

  const sel = s.runs.find((r) => r.method === 'select')!;
  const selDir = path.join(out, 'cells', 'qd-3shot', 'select-s0');
  const search = JSON.parse(fs.readFileSync(path.join(selDir, 'select.json'), 'utf8'));
  const selRun = JSON.parse(fs.readFileSync(path.join(selDir, 'run.json'), 'utf8'));
  assert.equal(selRun.method, 'tap-probe', 'the row is the final tap-probe model');
  assert.deepEqual([search.settings.population, search.settings.generations, search.settings.epochs, search.settings.seed], [2, 1, 1, 0]);
  assert.equal(search.settings.data, 'quickdraw:300-302');
  assert.equal(sel.testAcc, search.final.testAcc);
  assert.equal(sel.lr, search.best.lr);
  assert.ok(sel.selectCost && sel.selectCost.evaluated >= 1 && sel.selectCost.evaluated <= 4, JSON.stringify(sel.selectCost));
  close(sel.costSeconds, search.seconds.features + search.seconds.search + search.seconds.final);
  assert.equal(sel.gateLr, null);
  assert.equal(s.chosen.resnet20.select, undefined, 'select has no lr setting');
  assert.deepEqual(s.select, { population: 2, generations: 1, epochs: 1 });

  const ft32 = s.runs.find((r) => r.cell === 'qd-3shot' && r.method === 'finetune')!;
  const ft16 = s.runs.find((r) => r.cell === 'qd-3shot-bf16')!;
  assert.deepEqual([ft32.precision, ft16.precision, sel.precision], ['fp32', 'bf16', 'fp32']);
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'cells', 'qd-3shot-bf16', 'finetune-s0', 'run.json'), 'utf8')).precision, 'bf16');
  for (const r of [ft32, ft16]) {
    assert.equal(r.costSeconds, r.trainSeconds);
    assert.ok(r.secondsPerStep !== null && r.secondsPerStep > 0);
  }
  assert.equal(s.precision?.length, 1);
  const pr = s.precision![0];
  assert.deepEqual([pr.method, pr.fp32.cell, pr.other.cell, pr.other.precision, pr.fp32.n, pr.other.n], ['finetune', 'qd-3shot', 'qd-3shot-bf16', 'bf16', 1, 1]);
  close(pr.difference, 100 * (ft16.testAcc - ft32.testAcc), 1e-9);
  close(pr.fp32.trainSeconds, ft32.trainSeconds); close(pr.other.trainSeconds, ft16.trainSeconds);
  // One seed: sd 0, so only an identical result counts as within it.
  assert.equal(pr.withinFp32Sd, pr.difference === 0);
  // select is compared with finetune like any method.
  close(s.tables.cells['qd-3shot'].find((r) => r.method === 'select')!.errorChange!, 100 * (ft32.testAcc - sel.testAcc));
  assert.ok(s.intervals.select);

  const md = fs.readFileSync(path.join(out, 'results-tiny-related.md'), 'utf8');
  for (const want of ['Cost per run', 'Precision: reduced precision against fp32', 'bf16: ', 'distinct genomes', '| qd-3shot | finetune |']) {
    assert.ok(md.includes(want), `results has '${want}'`);
  }
  // Run again: every seed has finished, so neither the search nor the trainings start over.
  const stamp = fs.statSync(path.join(selDir, 'select.json')).mtimeMs;
  const again = await runTransfer({ profile: tiny, out, jobs: 1, threads: 1, log: () => {} });
  assert.deepEqual(again.runs, s.runs);
  assert.equal(fs.statSync(path.join(selDir, 'select.json')).mtimeMs, stamp);
  // A search stopped before select.json is unfinished: the report lists it missing, the next run starts it over, same seed → same row.
  fs.rmSync(path.join(selDir, 'select.json'));
  const stopped = await runTransfer({ profile: tiny, out, jobs: 1, threads: 1, train: false, log: () => {} });
  assert.deepEqual(stopped.missing.map((m) => [m.cell, m.method, m.seeds]), [['qd-3shot', 'select', [0]]]);
  const resumed = await runTransfer({ profile: tiny, out, jobs: 1, threads: 1, log: () => {} });
  const again2 = resumed.runs.find((r) => r.method === 'select')!;
  assert.deepEqual([again2.testAcc, again2.valAcc, again2.lr, again2.selectCost!.evaluated], [sel.testAcc, sel.valAcc, sel.lr, sel.selectCost!.evaluated]);
});
