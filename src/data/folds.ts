/**
 * Stratified, seeded folds for cross-validation (select's fitness, --auto's trials on a folder too
 * small for its validation split to rank them): each class's rows are shuffled
 * by Rng(seed, FOLD_STAGE, class) and dealt to the folds in turn, the deal continuing from class to
 * class, so every fold holds each class ⌊n_c/F⌋ or ⌈n_c/F⌉ times and the fold sizes differ by at
 * most one. Every row is in exactly one fold.
 */
import { Rng } from './rng';
import { InputError } from '../errors';

const FOLD_STAGE = 11;

/** The fold (0..folds-1) of each row of labels `y`. */
export function stratifiedFolds(y: Int32Array, folds: number, seed: number): Int32Array {
  if (!Number.isInteger(folds) || folds < 2) throw new Error(`internal: stratified folds need at least 2 folds, got ${folds}`);
  const byClass = new Map<number, number[]>();
  y.forEach((c, i) => { const rows = byClass.get(c); if (rows) rows.push(i); else byClass.set(c, [i]); });
  const fold = new Int32Array(y.length);
  let next = 0;
  for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
    for (const i of new Rng(seed, FOLD_STAGE, c).shuffle(byClass.get(c)!)) { fold[i] = next; next = (next + 1) % folds; }
  }
  return fold;
}

/** The class with the fewest rows in `y` and its count (classes without a row count 0). */
export function fewestOfClass(y: Int32Array, numClasses: number): { cls: number; count: number } {
  const counts = new Array<number>(numClasses).fill(0);
  for (const c of y) counts[c]++;
  const cls = counts.reduce((m, n, c) => (n < counts[m] ? c : m), 0);
  return { cls, count: counts[cls] };
}

/** Each class needs a row in every fold (else some fold's head never sees it held out, or never trains on it). */
export function checkFolds(y: Int32Array, folds: number, classes: string[], command: string): void {
  const fewest = fewestOfClass(y, classes.length);
  if (fewest.count < folds) {
    throw new InputError(`${command}: --folds ${folds} needs at least ${folds} images of every class in the training and validation splits; '${classes[fewest.cls]}' has ${fewest.count} (lower --folds, or --folds 1 for the validation split alone)`);
  }
}
