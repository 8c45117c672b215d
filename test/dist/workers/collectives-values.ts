/** The values each rank contributes in test/dist/collectives.test.ts (shared by the worker and the test). */
export const BROADCAST_ROOT = 1;

export function rankValues(rank: number): { floats: number[]; ints: number[] } {
  // Values whose sums round (0.1 + 0.2), that differ in sign and magnitude, and that are exact.
  const base = [0.1, -2.5, 1e-300, 3.75, 1 / 3, -1e-5, 1e150];
  return {
    floats: base.map((x, i) => (rank === 0 ? x : x * (i + 2) + 0.2 * rank)),
    ints: [2 ** 40 + rank, -(rank + 1) * 7, 1 << rank],
  };
}
