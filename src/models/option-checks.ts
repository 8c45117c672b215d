/** Checks of option values read from files (architecture options), shared by the families. */

export const isPositive = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x > 0;

/** 1 to 8 integers, each in 1..max. */
export const isIntList = (x: unknown, max: number): x is number[] => Array.isArray(x) && x.length >= 1 && x.length <= 8
  && x.every((v) => Number.isInteger(v) && v >= 1 && v <= max);
