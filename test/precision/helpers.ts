/** Shared by the precision tests. */
import { randn } from '../../src/engine/random';
import type { Batch } from '../../src/data/loader';

/** Loader-style fp32 batches of random images (what a method's calibrate reads). */
export async function* calibrationBatches(n: number): AsyncGenerator<Batch> {
  const x = randn([n, 3, 32, 32]);
  const data = x.data() as Float32Array;
  x.dispose();
  yield { x: data, y: new Int32Array(n), shape: [n, 3, 32, 32] };
}
