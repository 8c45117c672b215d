/**
 * The validation search (--auto, issue 14): a fixed number of trials per method, chosen on the
 * validation split; the data layer's split-open events show that no trial opens the test split and
 * the final run opens it once, at the end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onSplitOpen, SplitOpen } from '../../src/data/loader';
import { autoCompare, autoTrain, BUDGETS, chooseTrial, CV_FOLDS, readSearch, searchFolds, searchGrid, TRIALS_PER_METHOD } from '../../src/train/search';
import { Dataset, Item } from '../../src/data/dataset';
import { crossValidationFold } from '../../src/data/split';
import { readLog, readRunConfig, readResult } from '../../src/train/run-folder';
import { isInputError } from '../../src/errors';
import { SMALL, SMALL_API, cli, tmpDir } from './helpers';
import { resolveOptions } from '../../src/train/options';

function recordOpens(): { events: (SplitOpen & { phase: string })[]; phase: string; stop(): void } {
  const r = { events: [] as (SplitOpen & { phase: string })[], phase: '', stop: () => {} };
  r.stop = onSplitOpen((e) => r.events.push({ ...e, phase: r.phase }));
  return r;
}

test('grids: the same number of trials for every method; gated methods search gate lr too', () => {
  for (const m of ['linear-probe', 'finetune', 'l2sp', 'bss', 'spottune', 'adafilter', 'adafilter-nogbn', 'random-filter', 'adafilter-static']) {
    assert.equal(searchGrid(m).length, TRIALS_PER_METHOD, m);
  }
  assert.ok(searchGrid('adafilter').every((t) => t.gateLr !== undefined));
  assert.ok(searchGrid('spottune').every((t) => t.gateLr !== undefined));
  assert.ok(searchGrid('finetune').every((t) => t.gateLr === undefined));
  assert.ok(searchGrid('random-filter').every((t) => t.gateLr === undefined), 'random gates learn nothing');
  // Gated trials keep the method's own gate-lr ratio, so the middle trial is exactly the default run's settings.
  for (const m of ['adafilter', 'spottune']) {
    const d = resolveOptions({ data: 'x', method: m });
    const mid = resolveOptions({ data: 'x', method: m, lr: searchGrid(m)[1].lr, gateLr: searchGrid(m)[1].gateLr });
    assert.deepEqual([mid.lr, mid.gateLr], [d.lr, d.gateLr], m);
    for (const t of searchGrid(m)) assert.equal(t.gateLr! / t.lr, d.gateLr / d.lr, m);
  }
  assert.deepEqual(searchGrid('adafilter').map((t) => t.gateLr), [3, 10, 30, 3, 10, 30]);
  // The run's own budget first (so trial 1 is the plain default run), then each lr at twice it.
  assert.deepEqual(BUDGETS, [1, 2]);
  for (const m of ['finetune', 'adafilter', 'linear-probe']) {
    const g = searchGrid(m);
    assert.deepEqual(g.map((t) => t.budget ?? 1), [1, 1, 1, 2, 2, 2], m);
    assert.deepEqual(g.slice(3).map((t) => [t.lr, t.gateLr]), g.slice(0, 3).map((t) => [t.lr, t.gateLr]), m);
    assert.ok(g.slice(0, 3).every((t) => !('budget' in t)), `${m}: the run's own budget leaves the flag out`);
  }
  // Validation accuracy first, then loss, then the earlier trial.
  assert.equal(chooseTrial([{ valAcc: 0.5, valLoss: 1 }, { valAcc: 0.7, valLoss: 2 }, { valAcc: 0.7, valLoss: 1.5 }]), 2);
  assert.equal(chooseTrial([{ valAcc: 0.5, valLoss: 1 }, { valAcc: 0.5, valLoss: 1 }]), 0);
  assert.equal(chooseTrial([{ valAcc: null, valLoss: null }, { valAcc: 0.1, valLoss: 3 }]), 1);
  assert.equal(chooseTrial([{ valAcc: null, valLoss: null }]), -1);
});

test('train --auto: trials on validation only, the test split opened once by the final run', async () => {
  const dir = path.join(tmpDir('auto'), 'run');
  const rec = recordOpens();
  let trialsSeen = 0;
  try {
    const { result, search } = await autoTrain({ ...SMALL_API, method: 'finetune', epochs: 1, out: dir }, {
      onTrial: (k, n) => { rec.phase = k < n ? `trial${k}` : 'final'; if (k < n) trialsSeen++; },
    });
    assert.equal(trialsSeen, TRIALS_PER_METHOD);
    const tests = rec.events.filter((e) => e.split === 'test');
    assert.equal(tests.length, 1, 'the test split is opened once');
    assert.equal(tests[0].phase, 'final');
    assert.equal(rec.events[rec.events.length - 1].split, 'test', 'and last');
    // Each trial was scored on validation where a run reads test.
    for (let k = 0; k < TRIALS_PER_METHOD; k++) {
      const ev = rec.events.filter((e) => e.phase === `trial${k}`);
      assert.ok(ev.some((e) => e.as === 'test' && e.split === 'val'), `trial ${k} scored on val`);
      assert.ok(!ev.some((e) => e.split === 'test'));
      const tdir = path.join(dir, 'trials', String(k));
      assert.equal(readRunConfig(tdir).lr, searchGrid('finetune')[k].lr);
      // The 2× trials train twice the run's steps (here 1 epoch of 18 images at batch 8: 3 steps), as --steps.
      assert.equal(readRunConfig(tdir).steps, k < 3 ? 3 : 6, `trial ${k} steps`);
      assert.equal(search.trials[k].steps, k < 3 ? null : 6);
      assert.equal(readResult(tdir)!.test.examples, 24, 'the trial\'s final score counts the validation images (8 per class)');
      assert.match((readResult(tdir) as unknown as { note: string }).note, /the test split was not read/);
    }
    // search.json: every trial, the choice; the run is the chosen trial continued.
    assert.deepEqual(readSearch(dir), search);
    assert.equal(search.trials.length, TRIALS_PER_METHOD);
    assert.equal(search.chosen, chooseTrial(search.trials));
    assert.equal(readRunConfig(dir).lr, search.lr);
    assert.equal(readRunConfig(dir).steps, search.budget === 2 ? 6 : 3);
    assert.equal(search.steps, search.budget === 2 ? 6 : null);
    assert.deepEqual([search.folds, search.foldsWhy], [1, 'the validation split (24 images, 3 classes)']);
    assert.equal(result.val.acc, search.trials[search.chosen].valAcc);
    assert.deepEqual(readLog(dir), readLog(path.join(dir, 'trials', String(search.chosen))));
    assert.ok(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(fs.readFileSync(path.join(dir, 'trials', String(search.chosen), 'model.safetensors'))));
    assert.equal(result.test.examples, 60, 'the final score is on the test split (20 per class)');
    // Rerun: refused without --resume; with it, nothing is trained and the test split is not read again.
    await assert.rejects(autoTrain({ ...SMALL_API, method: 'finetune', epochs: 1, out: dir }), (e) => isInputError(e) && /already holds a run/.test((e as Error).message));
    rec.events.length = 0;
    const again = await autoTrain({ ...SMALL_API, method: 'finetune', epochs: 1, out: dir, resume: true });
    assert.deepEqual(again.result.test, result.test);
    assert.equal(rec.events.filter((e) => e.split === 'test').length, 0);
  } finally {
    rec.stop();
  }
  await assert.rejects(autoTrain({ ...SMALL_API, lr: 0.1, out: path.join(tmpDir('auto-lr'), 'r') }), (e) => isInputError(e) && /drop --lr/.test((e as Error).message));
});

test('a diverging trial is recorded and skipped, not the end of the search; all diverging is an InputError', async () => {
  const dir = path.join(tmpDir('auto-nan'), 'run');
  const o = { ...SMALL_API, method: 'finetune', epochs: 1, augment: false, out: dir };
  const { search } = await autoTrain(o, { grid: [{ lr: 1e9 }, { lr: 0.01 }] });
  assert.equal(search.trials[0].valAcc, null);
  assert.match(search.trials[0].error!, /loss became/);
  assert.equal(search.chosen, 1);
  assert.equal(readRunConfig(dir).lr, 0.01);
  // A rerun reads the failure instead of training the trial again.
  const again = await autoTrain({ ...o, resume: true }, { grid: [{ lr: 1e9 }, { lr: 0.01 }], onTrial: (k) => assert.ok(k !== 0 || fs.existsSync(path.join(dir, 'trials', '0', 'trial-failed.json'))) });
  assert.deepEqual(again.search, search);
  await assert.rejects(autoTrain({ ...o, out: path.join(dir, 'all') }, { grid: [{ lr: 1e9 }, { lr: 1e10 }] }),
    (e) => isInputError(e) && /every trial's loss became NaN or infinite/.test((e as Error).message));
});

test('compare --auto: every method gets the same trials; each seed\'s run opens the test split once', async () => {
  const out = tmpDir('auto-compare');
  const rec = recordOpens();
  let current = '';
  try {
    const c = await autoCompare({ ...SMALL_API, methods: ['finetune', 'adafilter'], seeds: 2, epochs: 1, out }, {
      onMethod: (m) => { current = m; },
      onTrial: (k, n) => { rec.phase = k < n ? `${current}-trial` : `${current}-final`; },
    });
    for (const m of ['finetune', 'adafilter']) {
      const s = readSearch(path.join(out, `${m}-s0`))!;
      assert.equal(s.trials.length, TRIALS_PER_METHOD);
      assert.deepEqual(c.searched![m], { lr: s.lr, ...(s.gateLr !== null ? { gateLr: s.gateLr } : {}), ...(s.steps !== null ? { steps: s.steps } : {}), search: `${m}-s0/search.json` });
      // Seed 1 runs at the searched settings, its budget included.
      const cfg = readRunConfig(path.join(out, `${m}-s1`));
      assert.equal(cfg.lr, s.lr);
      assert.equal(cfg.steps, readRunConfig(path.join(out, `${m}-s0`)).steps);
      if (m === 'adafilter') assert.equal(cfg.gateLr, s.gateLr);
    }
    assert.equal(rec.events.filter((e) => e.phase.endsWith('-trial') && e.split === 'test').length, 0, 'no trial opens the test split');
    assert.equal(rec.events.filter((e) => e.split === 'test').length, 4, 'one per method and seed');
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'compare.json'), 'utf8'));
    assert.deepEqual(saved.searched, c.searched);
  } finally {
    rec.stop();
  }
});

test('CLI: train --auto prints the search and records it, compare --auto records each method\'s; --auto with --lr is exit 2', () => {
  const dir = path.join(tmpDir('auto-cli'), 'run');
  const r = cli('train', ...SMALL, '--method', 'linear-probe', '--no-augment', '--epochs', '1', '--auto', '--out', dir);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^search: lr 0\.03 → val [\d.]+%, lr 0\.1 → val [\d.]+%, lr 0\.3 → val [\d.]+%, lr 0\.03 ×2 steps → val [\d.]+%, lr 0\.1 ×2 steps → val [\d.]+%, lr 0\.3 ×2 steps → val [\d.]+%; chose trial [1-6]\n/);
  assert.ok(readSearch(dir));
  const cdir = path.join(tmpDir('auto-cli-compare'), 'cmp');
  const c = cli('compare', ...SMALL, '--methods', 'finetune', '--seeds', '1', '--epochs', '1', '--auto', '--json', '--out', cdir);
  assert.equal(c.status, 0, c.stderr);
  const cj = JSON.parse(c.stdout);
  assert.equal(cj.searched.finetune.search, 'finetune-s0/search.json');
  assert.equal(readSearch(path.join(cdir, 'finetune-s0'))!.trials.length, TRIALS_PER_METHOD);
  const bad = cli('train', ...SMALL, '--auto', '--lr', '0.1', '--epochs', '1', '--out', path.join(dir, 'x'));
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /drop --lr/);
  for (const [args, want] of [
    [['--folds', '3'], /--folds: only with --auto/],
    [['--auto', '--folds', '0'], /--folds: expected an integer >= 1, got '0'/],
    [['--auto', '--folds', '20'], /--auto: --folds 20 needs at least 20 images of every class in the training and validation splits; '.*' has \d+/],
  ] as [string[], RegExp][]) {
    const b = cli('train', ...SMALL, '--epochs', '1', ...args, '--out', path.join(dir, 'y'));
    assert.equal(b.status, 2, `${args.join(' ')}: ${b.stderr}`);
    assert.match(b.stderr, want);
    assert.equal(b.stderr.trim().split('\n').length, 1, 'one line');
    assert.ok(!fs.existsSync(path.join(dir, 'y')), 'nothing written');
  }
});

/** A dataset of `perClass` training images per class (labels only: searchFolds and the fold split read no pixels). */
function labelled(trainPerClass: number[], valPerClass: number[], test = 5): Dataset {
  let index = 0;
  const items = (counts: number[]): Item[] => counts.flatMap((n, label) => Array.from({ length: n }, () => ({ index: index++, label })));
  const classes = trainPerClass.map((_, c) => `c${c}`);
  return { name: 'fixture', classes, splits: { train: items(trainPerClass), val: items(valPerClass), test: items(classes.map(() => test)) } } as unknown as Dataset;
}

test('searchFolds: cross-validation where the validation split has under 2 images per class and every class can fill the folds', () => {
  assert.equal(searchFolds(labelled([9, 9, 9], [1, 1, 1])).folds, CV_FOLDS);
  assert.match(searchFolds(labelled([9, 9, 9], [1, 1, 1])).why, /3-fold cross-validation over the 30 training and validation images: the validation split has 3 images for 3 classes/);
  assert.equal(searchFolds(labelled([9, 9, 9], [2, 2, 2])).folds, 1, '2 per class: the validation split');
  assert.equal(searchFolds(labelled([9, 9, 9], [3, 1, 1])).folds, CV_FOLDS, '5 images for 3 classes: under 2 per class on average');
  assert.equal(searchFolds(labelled([1, 9, 9], [1, 1, 1])).folds, 1, 'a class of 2 images cannot be dealt into 3 folds');
  assert.equal(searchFolds(labelled([9, 9], [9, 9]), 4).folds, 4, 'asked: used');
  assert.equal(searchFolds(labelled([9, 9], [1, 1]), 1).folds, 1);
  assert.throws(() => searchFolds(labelled([2, 9], [1, 1]), 4), (e) => isInputError(e) && /--folds 4 needs at least 4 images of every class.*'c0' has 3/.test((e as Error).message));
});

test('crossValidationFold: the folds partition the training and validation images, stratified, by seed; test is untouched', () => {
  const ds = labelled([7, 5, 6], [1, 1, 1]);
  const pool = [...ds.splits.train, ...ds.splits.val!].map((it) => it.index).sort((a, b) => a - b);
  const vals: number[][] = [];
  for (let f = 0; f < 3; f++) {
    const d = crossValidationFold(ds, f, 3, 0);
    const tr = d.splits.train.map((it) => it.index), va = d.splits.val!.map((it) => it.index);
    assert.deepEqual([...tr, ...va].sort((a, b) => a - b), pool, `fold ${f}: every pooled image, once`);
    assert.deepEqual(d.splits.test, ds.splits.test);
    for (let c = 0; c < 3; c++) assert.ok(d.splits.val!.some((it) => it.label === c), `fold ${f} validates class ${c}`);
    assert.deepEqual(crossValidationFold(ds, f, 3, 0).splits.val, d.splits.val, 'same seed, same fold');
    vals.push(va);
  }
  assert.deepEqual(vals.flat().sort((a, b) => a - b), pool, 'each pooled image validates in exactly one fold');
  assert.notDeepEqual([0, 1, 2].map((f) => crossValidationFold(ds, f, 3, 1).splits.val!.map((it) => it.index)), vals, 'another seed deals other folds');
  assert.throws(() => crossValidationFold(ds, 3, 3, 0), (e) => isInputError(e));
});

test('train --auto cross-validated: each trial once per fold on the pooled images at the run\'s steps, the final run on the run\'s own splits, test opened once', async () => {
  const dir = path.join(tmpDir('auto-cv'), 'run');
  const rec = recordOpens();
  const grid = [{ lr: 0.01 }, { lr: 0.03, budget: 2 }];
  try {
    const { result, search } = await autoTrain({ ...SMALL_API, method: 'finetune', epochs: 1, out: dir }, {
      grid, folds: 3, onTrial: (k, n) => { rec.phase = k < n ? `trial${k}` : 'final'; },
    });
    assert.deepEqual([search.folds, search.foldsWhy], [3, '--folds 3']);
    for (const [k, t] of search.trials.entries()) {
      assert.equal(t.folds!.length, 3);
      assert.equal(t.folds!.reduce((a, f) => a + f.examples, 0), 42, 'the 18 training and 24 validation images, each validated once');
      const n = t.folds!.reduce((a, f) => a + f.examples, 0);
      assert.ok(Math.abs(t.valAcc! - t.folds!.reduce((a, f) => a + f.valAcc * f.examples, 0) / n) < 1e-12, 'the score is the accuracy over every pooled image');
      assert.equal(t.bestEpoch, null);
      for (const f of t.folds!) {
        const fdir = path.join(dir, t.dir, f.dir);
        const cfg = readRunConfig(fdir);
        assert.deepEqual(cfg.cvFold, { fold: f.fold, folds: 3 });
        // The run's steps (1 epoch of its 18 training images at batch 8), although a fold trains on about 28.
        assert.equal(cfg.steps, k === 0 ? 3 : 6);
        assert.equal(cfg.lr, grid[k].lr);
        assert.equal(readResult(fdir)!.test.examples, f.examples);
      }
      assert.ok(!rec.events.some((e) => e.phase === `trial${k}` && e.split === 'test'), `trial ${k} never opens the test split`);
    }
    const tests = rec.events.filter((e) => e.split === 'test');
    assert.equal(tests.length, 1, 'the test split is opened once');
    assert.equal(tests[0].phase, 'final');
    // The final run trains on the run's own splits at the chosen settings: no fold, its own validation split.
    const cfg = readRunConfig(dir);
    assert.equal(cfg.cvFold, undefined);
    assert.equal(cfg.lr, search.lr);
    assert.equal(cfg.steps, search.chosen === 0 ? 3 : 6);
    assert.ok(Number.isInteger(Math.round(result.val.acc * 24 * 1e6) / 1e6), 'validated on the run\'s own 24 validation images');
    assert.equal(result.test.examples, 60);
    rec.events.length = 0;
    const again = await autoTrain({ ...SMALL_API, method: 'finetune', epochs: 1, out: dir, resume: true }, { grid, folds: 3 });
    assert.deepEqual(again.search, search);
    assert.equal(rec.events.filter((e) => e.split === 'test').length, 0, 'a rerun reuses every fold and the final run');
  } finally {
    rec.stop();
  }
});
