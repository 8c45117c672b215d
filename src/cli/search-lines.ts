/** How the CLI names --auto's trials (progress labels) and sums up a search (one line after it). */
import { SearchRecord, Trial } from '../train/search';

/** "lr 0.03 gate-lr 30 ×2 steps": a trial's settings; the budget only when it is not the run's own. */
export function trialLabel(t: Trial): string {
  return `lr ${t.lr}${t.gateLr !== undefined ? ` gate-lr ${t.gateLr}` : ''}${(t.budget ?? 1) !== 1 ? ` ×${t.budget} steps` : ''}`;
}

/** "search (3-fold cross-validation …): lr 0.003 → val 81.00%, …; chose trial 5 (…)". */
export function searchLine(s: SearchRecord): string {
  const trials = s.trials.map((t) => `${trialLabel(t).replace(' gate-lr ', '/')} → ${t.valAcc === null ? 'diverged' : `val ${(100 * t.valAcc).toFixed(2)}%`}`);
  return `search${s.folds > 1 ? ` (${s.folds}-fold cross-validation)` : ''}: ${trials.join(', ')}; chose trial ${s.chosen + 1}`;
}
