/**
 * A run folder is the whole record of one training run; everything downstream (eval, predict,
 * report, compare) reads it and nothing else.
 *
 *   run.json               what was asked: backbone, data, method, hyper-parameters, classes
 *   log.jsonl              one line per finished epoch
 *   checkpoint.safetensors last epoch (or SIGINT point): model, optimizer, position; for --resume
 *   model.safetensors      the weights with the best validation accuracy so far
 *   result.json            final numbers (test split read once, with the best weights)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import type { GateStats } from '../methods/gate-stats';
import type { ArchOptions, InputSpec } from './backbones';
import type { PreciseBn } from './precise-bn';
import type { Precision } from '../engine/precision';

export const RUN_FILES = {
  config: 'run.json', log: 'log.jsonl', checkpoint: 'checkpoint.safetensors', model: 'model.safetensors', result: 'result.json',
} as const;

export type CheckpointTies = 'lower-loss' | 'earliest';

export interface RunConfig {
  version: 1;
  backbone: string;
  arch: string;
  /** How to rebuild an imported architecture that `arch` alone does not name (Keras padding, BN eps). */
  archOptions?: ArchOptions;
  data: string;
  method: string;
  methodOptions: Record<string, unknown>;
  /** Epochs the run trains (the last may be partial with --steps). */
  epochs: number;
  /** The step budget (train/budget.ts): total steps, validation stride, the rule in words. Absent in older runs. */
  steps?: number;
  validateEvery?: number;
  budgetRule?: string;
  batch: number;
  lr: number;
  headLr: number;
  gateLr: number;
  weightDecay: number;
  momentum: number;
  schedule: 'cosine' | 'constant';
  labelSmoothing: number;
  augment: boolean;
  /** Precise BN before each validation (absent in runs made before it existed: 'off'). */
  preciseBn?: PreciseBn;
  /** --init: 'pretrained' or 'hybrid:LAYER' (absent in runs made before it existed: pretrained). */
  init?: string;
  shots: number | null;
  valFraction: number;
  testFraction: number;
  seed: number;
  threads: number;
  /** Arithmetic of the training steps and evaluations (absent in runs made before it existed: fp32). */
  precision?: Precision;
  /**
   * Which of several validation points with the best accuracy keeps its weights: 'lower-loss' (the
   * one with the lowest validation loss, the earliest of exact ties) or 'earliest' (absent in runs
   * made before 2026-12-01: they kept the first point to reach the best accuracy).
   */
  checkpointTies?: CheckpointTies;
  /** Set on a cross-validation trial of --auto: which fold of the pooled training and validation images validated it. */
  cvFold?: { fold: number; folds: number };
  /** Where the run trained ('cpu', 'cuda:0'); its files load on either. */
  device?: string;
  classes: string[];
  input: InputSpec & { resolvedStats: { mean: number[]; std: number[] } };
  inputSize: number;
  channels: 1 | 3;
  createdAt: string;
}

export interface EpochLog {
  epoch: number;
  steps: number;
  lr: number;
  trainLoss: number;
  trainAcc: number;
  valLoss: number;
  valAcc: number;
  imagesPerSec: number;
  seconds: number;
  time: string;
  /** Is the gate learning? Measured on the validation split after the epoch (gated methods). */
  gates?: GateLearning;
}

/** Per layer and overall: what the evaluation gates chose and how far the fine-tuned filters moved. */
export interface GateLearningStats {
  /** Fraction of (example, filter) gates choosing the fine-tuned copy. */
  fraction: number;
  /** Mean |z| of the gate logits; null when the gate has none (random-filter). */
  meanAbsLogit: number | null;
  /** Fraction of filters whose choice varies across examples. */
  filtersVarying: number;
  /** ‖F − S‖ / ‖S‖; null for methods without per-filter copies. */
  drift: number | null;
}

export interface GateLearning extends GateLearningStats {
  layers: ({ name: string } & GateLearningStats)[];
}

export interface SplitScore {
  acc: number;
  loss: number;
  examples: number;
  perClass: Record<string, number>;
}

export interface RunResult {
  method: string;
  backbone: string;
  arch: string;
  data: string;
  seed: number;
  epochs: number;
  bestEpoch: number;
  val: { acc: number; loss: number };
  test: SplitScore;
  gates: GateStats | null;
  params: { total: number; trainable: number; frozen: number };
  trainSeconds: number;
  dir: string;
}

function readJson<T>(file: string, what: string): T {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
    throw new InputError(`${file}: cannot read ${what} (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  try { return JSON.parse(text) as T; } catch {
    throw new InputError(`${file}: ${what} is not valid JSON`);
  }
}

export function isRunFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, RUN_FILES.config));
}

export function readRunConfig(dir: string): RunConfig {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new InputError(`${dir}: no such run folder`);
  const file = path.join(dir, RUN_FILES.config);
  if (!fs.existsSync(file)) throw new InputError(`${dir}: not a run folder (no ${RUN_FILES.config})`);
  const c = readJson<RunConfig>(file, 'the run configuration');
  if (c.version !== 1 || typeof c.arch !== 'string' || typeof c.method !== 'string' || !Array.isArray(c.classes)
    || !c.classes.every((x) => typeof x === 'string') || typeof c.input !== 'object' || c.input === null) {
    throw new InputError(`${file}: not a run configuration this version understands`);
  }
  return c;
}

/** Epoch lines; a torn last line (a kill mid-append) is skipped, anything else bad is an error. */
export function readLog(dir: string): EpochLog[] {
  const file = path.join(dir, RUN_FILES.log);
  if (!fs.existsSync(file)) return [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out: EpochLog[] = [];
  lines.forEach((l, i) => {
    if (!l.trim()) return;
    try { out.push(JSON.parse(l) as EpochLog); } catch {
      if (i < lines.length - 1 && lines.slice(i + 1).some((r) => r.trim())) throw new InputError(`${file}:${i + 1}: not valid JSON`);
    }
  });
  return out;
}

export function readResult(dir: string): RunResult | null {
  const file = path.join(dir, RUN_FILES.result);
  return fs.existsSync(file) ? readJson<RunResult>(file, 'the run result') : null;
}
