/**
 * The training both sides of test/dist/ddp.test.ts run: tiny float64 CNNs, a fixed data set, SGD
 * with momentum and weight decay, DistributedSampler's batch layout. Workers train under DDP; the
 * test trains the same model in one process and compares.
 */
import {
  Tensor, Module, Conv2d, Linear, SGD, F, manualSeed, randn, randint, tensor, tidy, noGrad,
} from '../../../src/index';
import { DistributedDataParallel } from '../../../src/dist';

export const STEPS = 10;
export const GLOBAL_BATCH = 8;
const SAMPLES = 80;
const DATA_SEED = 1234;

/** A CNN without BN; every parameter is used in every step. */
export class PlainCnn extends Module {
  conv1 = new Conv2d(3, 4, 3, { padding: 1 });
  conv2 = new Conv2d(4, 6, 3, { stride: 2, padding: 1 });
  fc = new Linear(6, 3);
  forward(x: Tensor): Tensor {
    return this.fc.forward(F.globalAvgPool(F.relu(this.conv2.forward(F.relu(this.conv1.forward(x))))));
  }
}

/**
 * A CNN that takes one of two paths per micro-batch (as AdaFilter's and SpotTune's gates skip
 * filters), so which parameters a rank uses changes from step to step, and with a head no step uses.
 */
export class GatedCnn extends Module {
  stem = new Conv2d(3, 4, 3, { padding: 1 });
  pathA = new Conv2d(4, 4, 3, { padding: 1 });
  pathB = new Conv2d(4, 4, 3, { padding: 1, bias: false });
  fc = new Linear(4, 3);
  neverUsed = new Linear(4, 3);
  usePathA = true;
  forward(x: Tensor): Tensor {
    const h = F.relu(this.stem.forward(x));
    const p = this.usePathA ? this.pathA : this.pathB;
    return this.fc.forward(F.globalAvgPool(F.relu(p.forward(h))));
  }
}

export type ModelKind = 'plain' | 'gated';

/** Which path micro-batch `part` of step `step` takes in GatedCnn: both paths in some steps, one in others. */
export const takesPathA = (step: number, part: number): boolean => (step + part) % 3 !== 0;

export function makeModel(kind: ModelKind, seed: number): PlainCnn | GatedCnn {
  manualSeed(seed);
  const m = kind === 'plain' ? new PlainCnn() : new GatedCnn();
  return m.to('float64');
}

export function makeData(): { x: Tensor; y: Tensor } {
  manualSeed(DATA_SEED);
  return { x: randn([SAMPLES, 3, 8, 8], { dtype: 'float64' }), y: randint(0, 3, [SAMPLES]) };
}

/**
 * The samples of micro-batch `part` of `parts` in step `step`: DistributedSampler's layout, where
 * the parts of a step together are exactly the one-process batch perm[step·B : (step+1)·B].
 */
export function batchIndices(step: number, part: number, parts: number): number[] {
  const perm = Array.from({ length: SAMPLES }, (_, i) => (i * 37) % SAMPLES);
  const global = perm.slice(step * GLOBAL_BATCH, (step + 1) * GLOBAL_BATCH);
  return global.filter((_, j) => j % parts === part);
}

export const SGD_OPTIONS = { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 };
export const makeOptimizer = (m: Module): SGD => new SGD(m.parameters(), SGD_OPTIONS);

function select(t: Tensor, idx: number[]): Tensor {
  return t.indexSelect(0, tensor(idx, { dtype: 'int64' }));
}

/** Forward and backward of one micro-batch; the loss is scaled by `scale` (1/parts when one process plays every rank). */
export function backwardOn(model: PlainCnn | GatedCnn, data: { x: Tensor; y: Tensor }, step: number, part: number, parts: number,
  o: { scale?: number; ddp?: DistributedDataParallel } = {}): void {
  tidy(() => {
    const idx = batchIndices(step, part, parts);
    const x = select(data.x, idx), y = select(data.y, idx);
    if (model instanceof GatedCnn) model.usePathA = takesPathA(step, part);
    const forward = (): Tensor => F.crossEntropy(model.forward(x), y).mul(o.scale ?? 1);
    const loss = o.ddp ? o.ddp.forward(forward, (l) => [l]) : forward();
    loss.backward();
  });
}

/** The named parameters as plain numbers. */
export function parameterValues(m: Module): Record<string, number[]> {
  return noGrad(() => Object.fromEntries(m.namedParameters().map(([n, p]) => [n, p.detach().toArray()])));
}
