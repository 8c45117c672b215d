import { Optimizer } from './optimizer';

/** Learning rate at step t (an epoch or an iteration, as the caller counts) for a base lr. */
export type Schedule = (baseLr: number, t: number) => number;

export const constant = (): Schedule => (base) => base;

/** base · gamma^⌊t / stepSize⌋ (torch StepLR). */
export const stepDecay = (stepSize: number, gamma = 0.1): Schedule => (base, t) => base * gamma ** Math.floor(t / stepSize);

/** base · gamma^(number of milestones ≤ t) (torch MultiStepLR): every decay applies, not only the first. */
export const multiStep = (milestones: number[], gamma = 0.1): Schedule =>
  (base, t) => base * gamma ** milestones.filter((m) => m <= t).length;

/** Cosine from base to etaMin over tMax steps (torch CosineAnnealingLR, closed form). */
export const cosine = (tMax: number, etaMin = 0): Schedule =>
  (base, t) => etaMin + (base - etaMin) * (1 + Math.cos(Math.PI * t / tMax)) / 2;

/** Linear warm-up from base·startFactor over `steps`, then `after` counted from the end of warm-up. */
export const warmup = (steps: number, after: Schedule, startFactor = 0.1): Schedule =>
  (base, t) => (t < steps ? base * (startFactor + (1 - startFactor) * t / steps) : after(base, t - steps));

/** Sets each group's lr from its base lr; call step() once per epoch (or iteration). */
export class LRScheduler {
  readonly baseLrs: number[];
  t = 0;

  constructor(readonly optimizer: Optimizer, readonly schedule: Schedule) {
    this.baseLrs = optimizer.groups.map((g) => g.lr);
    this.apply();
  }

  step(): void {
    this.t++;
    this.apply();
  }

  private apply(): void {
    this.optimizer.groups.forEach((g, i) => (g.lr = this.schedule(this.baseLrs[i], this.t)));
  }

  get lrs(): number[] {
    return this.optimizer.groups.map((g) => g.lr);
  }
}
