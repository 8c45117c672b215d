/** What a training run takes, with defaults, checked before anything is loaded or written. */
import * as os from 'node:os';
import { InputError } from '../errors';
import { getMethod } from '../methods/registry';
import { NormalizeChoice, checkNormalize } from '../data/transforms';
import { PRECISE_BN, PreciseBn } from './precise-bn';
import { checkInit, InitChoice } from './hybrid-init';
import { resolveDevice } from '../engine/device';
import { checkPrecision, Precision } from '../engine/precision';
import type { DistOptions } from './data-parallel';

export interface TrainOptions {
  /** 'default' (the shipped backbone), an architecture name, or a weights file (see openBackbone). */
  backbone?: string;
  /** A dataset name: mnist, quickdraw:300-309, glyphs:scripts=Armenian, a folder… */
  data: string;
  method?: string;
  /** The method's own options (its defaults: `adafilter methods`); unknown names are refused. */
  methodOptions?: Record<string, unknown>;
  epochs?: number;
  /**
   * Optimizer steps of the whole run (an alternative to epochs; see src/train/budget.ts). Checked
   * here; not both `steps` and `epochs`.
   */
  steps?: number;
  batch?: number;
  /** Backbone learning rate (SGD, momentum 0.9). */
  lr?: number;
  /** New head's learning rate; default lr. */
  headLr?: number;
  /** Gate / policy network learning rate; default lr. */
  gateLr?: number;
  weightDecay?: number;
  momentum?: number;
  /** Learning rate over the run: cosine to 0 per step (default) or constant. */
  schedule?: 'cosine' | 'constant';
  labelSmoothing?: number;
  /** Input side in pixels; default: what the backbone's weights were trained at. */
  inputSize?: number;
  /**
   * Normalisation of the 0..1 pixels instead of the one the backbone's weights record: 'dataset'
   * (the target's training statistics), 'imagenet', 'none' (x/255 only), or explicit statistics.
   */
  normalize?: NormalizeChoice;
  /**
   * linear-probe without augmentation computes the frozen backbone's features once and trains the
   * head on them (default true); false runs the backbone every step (same result within float tolerance).
   */
  featureCache?: boolean;
  /**
   * The split the finished run is scored on: 'test' (default), or 'val' for validation-search
   * trials, which must never read the test split (result.json's `test` then holds the validation score).
   */
  evaluateOn?: 'test' | 'val';
  /**
   * A cross-validation trial (train/search.ts on a folder too small for its validation split): the
   * training and validation images pooled and dealt into `folds` stratified folds by seed, fold
   * `fold` validating and the rest training. Only with evaluateOn 'val'.
   */
  cvFold?: { fold: number; folds: number };
  /** Random crops with padding and horizontal flips in training (default true). */
  augment?: boolean;
  /**
   * Re-estimate BN statistics under the evaluation gates before each validation (precise BN,
   * train/precise-bn.ts): 'auto' (default) for gated methods, 'on', 'off'.
   */
  preciseBn?: PreciseBn;
  /**
   * 'pretrained' (default): the backbone's weights as they are; 'hybrid:LAYER': pretrained up to and
   * including LAYER, freshly initialised after it (train/hybrid-init.ts).
   */
  init?: string;
  /** Training examples per class (few-shot); default all. */
  shots?: number;
  /** Classes of the data to keep, by name or index. */
  classes?: (string | number)[];
  /** Fractions carved from the training data when the source has no val / test split. */
  valFraction?: number;
  testFraction?: number;
  seed?: number;
  /** libtorch threads; default: the CPU count, at most 4. Results depend on it (float summation order). */
  threads?: number;
  /**
   * Arithmetic: 'fp32' (default), 'bf16' autocast (CPU or CUDA) or 'fp16' autocast with loss
   * scaling (CUDA only). Parameters and optimizer state stay fp32 either way.
   */
  precision?: Precision;
  /** 'cpu' (default), 'cuda', 'cuda:N' or 'auto' (CUDA when a GPU is usable). run.json records the resolved one. */
  device?: string;
  /** Data loading threads; default min(2, CPUs). */
  workers?: number;
  /** The run folder. Default runs/<method>-<data>-s<seed>. */
  out?: string;
  /** Continue the run in `out` from its checkpoint (a finished run returns its result; no run there: start one). */
  resume?: boolean;
  /** Called with progress (steps, epochs); used by the CLI's progress bar. */
  onEvent?: (e: TrainEvent) => void;
  /** Aborting saves a checkpoint at the next step boundary and stops (the CLI wires SIGINT to it). */
  signal?: AbortSignal;
  /** How a process a launcher started joins its data-parallel job (train/data-parallel.ts); unused otherwise. */
  dist?: DistOptions;
}

export type TrainEvent =
  | { type: 'start'; dir: string; epochs: number; stepsPerEpoch: number; startEpoch: number; startStep: number; description: string }
  | { type: 'step'; epoch: number; step: number; stepsPerEpoch: number; loss: number; acc: number; imagesPerSec: number; lr: number }
  | { type: 'epoch'; epoch: number; epochs: number; trainLoss: number; trainAcc: number; valLoss: number; valAcc: number; best: boolean; seconds: number; imagesPerSec: number }
  | { type: 'test'; acc: number; loss: number }
  | { type: 'interrupted'; epoch: number; step: number; checkpoint: string };

export type ResolvedOptions = Required<Omit<TrainOptions, 'onEvent' | 'signal' | 'dist' | 'shots' | 'classes' | 'resume' | 'workers' | 'inputSize' | 'steps' | 'epochs' | 'normalize' | 'init' | 'cvFold'>> & {
  cvFold: { fold: number; folds: number } | null;
  init: InitChoice;
  /** As given: null lets the step budget decide (train/budget.ts). */
  epochs: number | null;
  inputSize: number | null;
  steps: number | null;
  normalize: NormalizeChoice | null;
  shots: number | null;
  classes: (string | number)[] | null;
  resume: boolean;
  workers: number;
  /** Resolved: 'cpu' or 'cuda:N'. */
  device: string;
};

export const TRAIN_DEFAULTS = {
  backbone: 'default', method: 'adafilter', batch: 32, lr: 0.01, weightDecay: 5e-4, momentum: 0.9,
  schedule: 'cosine', labelSmoothing: 0, augment: true, valFraction: 0.1, testFraction: 0.2, seed: 0,
} as const;

/** The CPU count, at most 4; a launcher's worker takes the OMP_NUM_THREADS it was given (torchrun's one each). */
function defaultThreads(env: NodeJS.ProcessEnv = process.env): number {
  const given = Number(env.OMP_NUM_THREADS);
  if (env.WORLD_SIZE && Number.isInteger(given) && given >= 1) return given;
  return Math.max(1, Math.min(4, os.cpus().length));
}

function check(ok: boolean, msg: string): void {
  if (!ok) throw new InputError(msg);
}

/**
 * Device and precision of a run, evaluation or prediction, checked against this libtorch: the
 * device as libtorch names it and a precision that can run there.
 */
export function resolveCompute(o: { device?: string; precision?: string }): { device: string; precision: Precision } {
  const device = resolveDevice(o.device ?? 'cpu');
  return { device, precision: checkPrecision(o.precision ?? 'fp32', device) };
}

export function resolveOptions(o: TrainOptions): ResolvedOptions {
  check(typeof o.data === 'string' && o.data.length > 0, 'data: a dataset name is required (e.g. mnist, quickdraw:300-309, a folder)');
  const method = o.method ?? TRAIN_DEFAULTS.method;
  getMethod(method); // unknown names fail here, before any loading
  const r: ResolvedOptions = {
    backbone: o.backbone ?? TRAIN_DEFAULTS.backbone,
    data: o.data,
    method,
    methodOptions: o.methodOptions ?? {},
    epochs: o.epochs ?? null,
    steps: o.steps ?? null,
    batch: o.batch ?? TRAIN_DEFAULTS.batch,
    lr: o.lr ?? TRAIN_DEFAULTS.lr,
    headLr: o.headLr ?? o.lr ?? TRAIN_DEFAULTS.lr,
    gateLr: o.gateLr ?? (o.lr ?? TRAIN_DEFAULTS.lr) * (getMethod(method).gateLrFactor ?? 1),
    weightDecay: o.weightDecay ?? TRAIN_DEFAULTS.weightDecay,
    momentum: o.momentum ?? TRAIN_DEFAULTS.momentum,
    schedule: o.schedule ?? TRAIN_DEFAULTS.schedule,
    labelSmoothing: o.labelSmoothing ?? TRAIN_DEFAULTS.labelSmoothing,
    augment: o.augment ?? TRAIN_DEFAULTS.augment,
    preciseBn: o.preciseBn ?? 'auto',
    init: checkInit(o.init ?? 'pretrained'),
    inputSize: o.inputSize ?? null,
    normalize: o.normalize ?? null,
    featureCache: o.featureCache ?? true,
    evaluateOn: o.evaluateOn ?? 'test',
    cvFold: o.cvFold ?? null,
    shots: o.shots ?? null,
    classes: o.classes ?? null,
    valFraction: o.valFraction ?? TRAIN_DEFAULTS.valFraction,
    testFraction: o.testFraction ?? TRAIN_DEFAULTS.testFraction,
    seed: o.seed ?? TRAIN_DEFAULTS.seed,
    threads: o.threads ?? defaultThreads(),
    workers: o.workers ?? Math.min(2, os.cpus().length),
    out: o.out ?? '',
    resume: o.resume ?? false,
    ...resolveCompute(o),
  };
  if (!r.out) r.out = `runs/${r.method}-${r.data.replace(/[^A-Za-z0-9._-]+/g, '_')}-s${r.seed}`;
  const int = (v: number, name: string, min: number) => check(Number.isInteger(v) && v >= min, `${name}: expected an integer >= ${min}, got ${v}`);
  const num = (v: number, name: string, min: number, max = Infinity) => check(typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max, `${name}: expected a number in [${min}, ${max}], got ${v}`);
  if (r.epochs !== null) int(r.epochs, 'epochs', 1);
  int(r.batch, 'batch', 1); int(r.seed, 'seed', 0); int(r.threads, 'threads', 1); int(r.workers, 'workers', 0);
  if (r.shots !== null) int(r.shots, 'shots', 1);
  if (r.steps !== null) int(r.steps, 'steps', 1);
  check(!(o.steps !== undefined && o.epochs !== undefined), 'give --steps or --epochs, not both');
  if (r.normalize !== null) checkNormalize(r.normalize, 'normalize');
  check(r.evaluateOn === 'test' || r.evaluateOn === 'val', `evaluateOn: expected test or val, got ${r.evaluateOn}`);
  if (r.cvFold !== null) {
    const { fold, folds } = r.cvFold;
    check(Number.isInteger(folds) && folds >= 2 && Number.isInteger(fold) && fold >= 0 && fold < folds, `cvFold: expected 0 <= fold < folds and folds >= 2, got fold ${fold} of ${folds}`);
    check(r.evaluateOn === 'val', 'cvFold: a cross-validation trial is scored on its validation fold (evaluateOn val)');
  }
  if (r.inputSize !== null) check(Number.isInteger(r.inputSize) && r.inputSize >= 8 && r.inputSize <= 1024, `input-size: expected an integer in 8..1024, got ${r.inputSize}`);
  num(r.lr, 'lr', 0); num(r.headLr, 'head-lr', 0); num(r.gateLr, 'gate-lr', 0); num(r.weightDecay, 'wd', 0);
  num(r.momentum, 'momentum', 0, 1); num(r.labelSmoothing, 'label-smoothing', 0, 1);
  num(r.valFraction, 'val fraction', 0, 0.9); num(r.testFraction, 'test fraction', 0, 0.9);
  check(r.schedule === 'cosine' || r.schedule === 'constant', `schedule: expected cosine or constant, got ${r.schedule}`);
  check(PRECISE_BN.includes(r.preciseBn), `precise-bn: expected ${PRECISE_BN.join(', ')}, got ${r.preciseBn}`);
  return r;
}
