/**
 * Throughput of one fine-tuning method: forward passes (eval mode) and SGD training steps of a
 * method-adapted model, in images per second (median step time). Absolute numbers depend on the
 * machine and its load; compare methods measured in the same process (see compareMethodCost).
 */
import { manualSeed, randn, randint } from '../src/engine/random';
import { setNumThreads } from '../src/engine/runtime';
import { tidy } from '../src/engine/scope';
import { noGrad } from '../src/engine/autograd';
import { Tensor } from '../src/engine/tensor';
import { buildModel, modelSpec } from '../src/models/registry';
import { SGD } from '../src/optim/sgd';
import { applyMethod, MethodModel } from '../src/methods';
import { machineInfo, median } from './machine';

export interface MethodThroughputOptions {
  method: string;
  arch: string;
  batch: number;
  threads: number;
  /** Timed steps per mode (default 10). */
  steps?: number;
  /** Untimed steps first (default 2). */
  warmup?: number;
  classes?: number;
  /** Options passed to the method. */
  options?: Record<string, unknown>;
}

interface Bench {
  model: MethodModel;
  opt: SGD;
  x: Tensor;
  y: Tensor;
}

function setup(o: MethodThroughputOptions): Bench {
  const spec = modelSpec(o.arch);
  manualSeed(0);
  const classes = o.classes ?? 10;
  const model = applyMethod(o.method, buildModel(o.arch, classes), classes, o.options ?? {});
  const opt = new SGD(model.paramGroups({ lr: 0.01, gateLr: 0.01 }), { lr: 0.01, momentum: 0.9 });
  return { model, opt, x: randn([o.batch, 3, spec.inputSize, spec.inputSize]), y: randint(0, classes, [o.batch]) };
}

function timeSteps(b: Bench, mode: 'forward' | 'train', steps: number): number[] {
  const times: number[] = [];
  if (mode === 'forward') b.model.eval(); else b.model.train();
  for (let i = 0; i < steps; i++) {
    const t0 = process.hrtime.bigint();
    if (mode === 'forward') {
      noGrad(() => tidy(() => { b.model.forward(b.x).sum().item(); }));
    } else {
      tidy(() => {
        b.opt.zeroGrad();
        b.model.loss(b.model.run(b.x), b.y).backward();
        b.opt.step();
      });
    }
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return times;
}

function teardown(b: Bench): void {
  b.model.dispose();
  b.opt.dispose();
  b.x.dispose(); b.y.dispose();
}

function summary(o: MethodThroughputOptions, b: Bench, fwd: number[], train: number[]) {
  const f = median(fwd), t = median(train);
  const counts = b.model.parameterCounts();
  return {
    method: o.method, arch: o.arch, batch: o.batch, threads: o.threads,
    train_img_s: o.batch / t, forward_img_s: o.batch / f, train_ms: t * 1e3, forward_ms: f * 1e3,
    steps_timed: train.length, params_total: counts.total, params_trainable: counts.trainable,
    machine: machineInfo(),
  };
}

export type MethodThroughput = ReturnType<typeof summary>;

/** Times forward passes and training steps of `method` applied to `arch`. */
export function runMethodThroughput(o: MethodThroughputOptions): MethodThroughput {
  setNumThreads(o.threads);
  const b = setup(o);
  try {
    const steps = o.steps ?? 10, warmup = o.warmup ?? 2;
    timeSteps(b, 'forward', warmup);
    const fwd = timeSteps(b, 'forward', steps);
    timeSteps(b, 'train', warmup);
    const train = timeSteps(b, 'train', steps);
    return summary(o, b, fwd, train);
  } finally {
    teardown(b);
  }
}

/**
 * Training-step cost of `method` relative to `baseline` (default finetune), both models alive in one
 * process and timed in alternating rounds so that machine load hits both alike; medians.
 */
export function compareMethodCost(o: Omit<MethodThroughputOptions, 'method'> & { method: string; baseline?: string; rounds?: number }) {
  setNumThreads(o.threads);
  const baseline = o.baseline ?? 'finetune';
  const a = setup(o), b = setup({ ...o, method: baseline, options: {} });
  try {
    const steps = o.steps ?? 3, rounds = o.rounds ?? 5, warmup = o.warmup ?? 2;
    const ta: number[] = [], tb: number[] = [], fa: number[] = [], fb: number[] = [];
    timeSteps(a, 'train', warmup); timeSteps(b, 'train', warmup);
    for (let r = 0; r < rounds; r++) {
      ta.push(...timeSteps(a, 'train', steps));
      tb.push(...timeSteps(b, 'train', steps));
      fa.push(...timeSteps(a, 'forward', steps));
      fb.push(...timeSteps(b, 'forward', steps));
    }
    const sa = summary(o, a, fa, ta), sb = summary({ ...o, method: baseline }, b, fb, tb);
    return {
      method: sa, baseline: sb,
      train_cost_ratio: sb.train_img_s / sa.train_img_s,
      forward_cost_ratio: sb.forward_img_s / sa.forward_img_s,
    };
  } finally {
    teardown(a); teardown(b);
  }
}

if (require.main === module) {
  const [method = 'adafilter', arch = 'resnet20', batch = '32', threads = '2', rounds = '5'] = process.argv.slice(2);
  const r = compareMethodCost({ method, arch, batch: Number(batch), threads: Number(threads), rounds: Number(rounds) });
  const { machine, ...m } = r.method;
  const { machine: _m, ...bl } = r.baseline;
  console.log(JSON.stringify({ method: m, baseline: bl, train_cost_ratio: r.train_cost_ratio, forward_cost_ratio: r.forward_cost_ratio, machine }, null, 1));
}
