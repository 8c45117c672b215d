/**
 * How long a run trains, in optimizer steps. Epochs are a poor unit on small folders: 10 epochs of
 * 100 images at batch 32 are 40 steps, far too few (issue 14: digits at 10 shots reach 77% after 40
 * steps, 89–91% after 160). So the default is a number of steps with a floor, and epochs follow
 * from it: a small set is cycled through as often as the floor needs. TLlib does the same in
 * spirit: it fixes the iterations per epoch whatever the dataset size.
 *
 * Pure: no I/O, no state; the trainer asks it once, run.json records what it said.
 */
import { InputError } from '../errors';

/**
 * The floor of the default budget. 500 steps at batch 32 are 16,000 image presentations: 160 passes
 * over 10 classes × 10 shots, 32 over 10 × 50, and on this project's 2-core CPU about a minute for
 * the shipped ResNet-20. It is ~3× the 160 steps where the digits runs above stop improving much,
 * so the default errs on the long side (the best-validation checkpoint guards against overfitting),
 * yet stays a few minutes for a CPU user.
 */
export const MIN_STEPS = 500;
/** Large sets keep the old default length: 10 passes over the data. */
export const DEFAULT_EPOCHS = 10;
/** Validation points a run aims for (at least this many when it has that many epochs). */
export const VALIDATION_POINTS = 20;

export interface BudgetInput {
  /** Images in the training split (after few-shot sampling). */
  trainSize: number;
  batch: number;
  /** Steps asked for (--steps); the last epoch may then be partial. */
  steps?: number | null;
  /** Epochs asked for (--epochs). */
  epochs?: number | null;
  /** Whether the loader drops a last incomplete batch (ours does not). */
  dropLast?: boolean;
}

export interface Budget {
  /** Optimizer steps of the whole run. */
  steps: number;
  /** Epochs started: ceil(steps / stepsPerEpoch). */
  epochs: number;
  stepsPerEpoch: number;
  /** Steps of the last epoch (stepsPerEpoch unless --steps cut it short). */
  lastEpochSteps: number;
  /** Validate after every this many epochs (and after the last one). */
  validateEvery: number;
  /** Validations the run makes, the last epoch included. */
  validations: number;
  /** The rule in words, for run.json. */
  rule: string;
}

function positiveInt(v: number, name: string): void {
  if (!Number.isInteger(v) || v < 1) throw new InputError(`${name}: expected an integer >= 1, got ${v}`);
}

/**
 * The run's length. `steps` or `epochs` given: that (not both). Neither: max(MIN_STEPS,
 * DEFAULT_EPOCHS epochs) steps, rounded up to whole epochs so that every image is seen equally often.
 */
export function trainingBudget(o: BudgetInput): Budget {
  positiveInt(o.trainSize, 'training set size');
  positiveInt(o.batch, 'batch');
  const steps = o.steps ?? null, epochs = o.epochs ?? null;
  if (steps !== null && epochs !== null) throw new InputError('give --steps or --epochs, not both');
  if (steps !== null) positiveInt(steps, 'steps');
  if (epochs !== null) positiveInt(epochs, 'epochs');
  const spe = o.dropLast ? Math.floor(o.trainSize / o.batch) : Math.ceil(o.trainSize / o.batch);
  if (spe < 1) throw new InputError(`the training set (${o.trainSize} images) is smaller than one batch of ${o.batch} and the last batch is dropped`);
  let total: number, rule: string;
  if (steps !== null) {
    total = steps;
    rule = `--steps ${steps}`;
  } else if (epochs !== null) {
    total = epochs * spe;
    rule = `--epochs ${epochs} × ${spe} steps per epoch`;
  } else {
    const wanted = Math.max(MIN_STEPS, DEFAULT_EPOCHS * spe);
    total = Math.ceil(wanted / spe) * spe;
    rule = `default: max(${MIN_STEPS} steps, ${DEFAULT_EPOCHS} epochs) rounded up to whole epochs of ${spe} steps`;
  }
  const nEpochs = Math.ceil(total / spe);
  const lastEpochSteps = total - (nEpochs - 1) * spe;
  // Every epoch while that gives at most 2× the target; beyond, a fixed stride that keeps ≥ VALIDATION_POINTS.
  const validateEvery = Math.max(1, Math.floor(nEpochs / VALIDATION_POINTS));
  const validations = Math.floor(nEpochs / validateEvery) + (nEpochs % validateEvery === 0 ? 0 : 1);
  return {
    steps: total, epochs: nEpochs, stepsPerEpoch: spe, lastEpochSteps, validateEvery, validations,
    rule: `${rule} → ${total} steps, ${nEpochs} epochs, validation every ${validateEvery} epoch${validateEvery > 1 ? 's' : ''}`,
  };
}
