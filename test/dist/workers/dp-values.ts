/** Sizes shared by test/dist/data-parallel.test.ts and its worker. */
export const DP_SAMPLES = 21;
export const DP_BATCH = 8;
export const STOP_STEP = 1;
