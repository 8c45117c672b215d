/**
 * `adafilter train --nproc-per-node 2` with BN in training mode (finetune of a whole resnet20, real
 * Quick Draw images, augmentation on), float32, against a reference computed here in one process:
 * each step, the ranks' micro-batches (rows j ≡ r mod 2 of the global batch) run one after the
 * other through one model, their gradients weighted to the global batch's mean and summed, then
 * one SGD step: PyTorch's DDP without SyncBN, where each rank's BN normalises with its own
 * micro-batch's statistics and the running statistics kept are rank 0's.
 *
 * The reference is held to the trainer first: run on whole batches it reproduces the one-process
 * `adafilter train` run, so what it shares with the trainer (options, loader, schedule) is the
 * trainer's. What goes through the trainer here: the sampler's sharding, DDP's averaging, BN
 * buffers from rank 0, the run folder written by rank 0 alone; the trainer's closing check that
 * every replica holds the same parameters bit for bit (the run fails otherwise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeSafetensors } from '../../src/io/safetensors';
import { Tensor } from '../../src/engine/tensor';
import { tidy } from '../../src/engine/scope';
import { manualSeed } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { SGD } from '../../src/optim/sgd';
import { cosine } from '../../src/optim/schedule';
import { applyMethod } from '../../src/methods/registry';
import { openDataset } from '../../src/data/registry';
import { createLoader, Batch } from '../../src/data/loader';
import { resolveOptions } from '../../src/train/options';
import { openBackbone, inputTransform } from '../../src/train/backbones';
import { inputsOf, targetsOf } from '../../src/train/batch';
import { trainingBudget } from '../../src/train/budget';
import { cli, logLines, tempFiles, tmpDir } from '../train/helpers';

const DATA = { backbone: 'resnet20', data: 'quickdraw:300-302', shots: 6, batch: 6, steps: 6, seed: 4 };
const ARGS = ['train', '--method', 'finetune', '--backbone', DATA.backbone, '--data', DATA.data, '--shots', String(DATA.shots),
  '--batch', String(DATA.batch), '--steps', String(DATA.steps), '--seed', String(DATA.seed), '--threads', '1', '--workers', '0'];
const RTOL = 1e-4, ATOL = 1e-6;

type State = Map<string, number[]>;

/** The model's tensors in a run folder's checkpoint (the last step's weights and BN buffers), by state-dict name. */
function checkpointModel(dir: string): State {
  const file = path.join(dir, 'checkpoint.safetensors');
  const { tensors } = decodeSafetensors(fs.readFileSync(file), file);
  const out: State = new Map();
  for (const [k, t] of tensors) {
    if (k.startsWith('model.')) out.set(k.slice('model.'.length), t.toArray());
    t.dispose();
  }
  return out;
}

/** Rows j ≡ rank (mod 2) of a loader batch: DistributedSampler's share, written out here on its own. */
function share(b: Batch, rank: number): Batch {
  const rows = [...b.y.keys()].filter((j) => j % 2 === rank);
  const per = b.shape[1] * b.shape[2] * b.shape[3];
  const x = new Float32Array(rows.length * per);
  rows.forEach((j, i) => x.set(b.x.subarray(j * per, (j + 1) * per), i * per));
  return { x, y: Int32Array.from(rows, (j) => b.y[j]), shape: [rows.length, b.shape[1], b.shape[2], b.shape[3]] };
}

/**
 * The run's training in this process: whole batches (one process), or each batch as the two ranks'
 * micro-batches, BN running statistics kept from rank 0's only. Returns the final state dict.
 */
async function reference(microBatches: boolean): Promise<State> {
  const o = resolveOptions({ ...DATA, method: 'finetune', threads: 1, workers: 0, out: tmpDir('dp-bn-ref') });
  const ds = await openDataset(o.data, { seed: o.seed, shots: o.shots ?? undefined, val: o.valFraction, test: o.testFraction });
  setNumThreads(1);
  manualSeed(o.seed);
  const bb = openBackbone(o.backbone, ds.classes.length);
  const transform = await inputTransform(bb.input, ds);
  const model = applyMethod('finetune', bb.model, ds.classes.length, o.methodOptions);
  const opt = new SGD(model.paramGroups({ lr: o.lr, headLr: o.headLr, gateLr: o.gateLr, weightDecay: o.weightDecay }), { lr: o.lr, momentum: o.momentum });
  const baseLrs = opt.groups.map((g) => g.lr);
  const budget = trainingBudget({ trainSize: ds.splits.train.length, batch: o.batch, steps: o.steps, epochs: o.epochs });
  const schedule = cosine(budget.steps);
  assert.equal(o.augment, true);
  const train = await createLoader(ds, { split: 'train', batch: o.batch, seed: o.seed, workers: 0,
    transform: { ...transform, crop: 'random', pad: Math.max(1, Math.round(transform.height / 8)), flip: true } });
  const buffers = model.namedBuffers().map(([, b]) => b as Tensor);
  let step = 0;
  try {
    for (let epoch = 0; epoch < budget.epochs; epoch++) {
      model.train();
      let k = 0;
      for await (const b of train.epoch(epoch)) {
        if (k++ >= (epoch + 1 === budget.epochs ? budget.lastEpochSteps : budget.stepsPerEpoch)) break;
        model.atStep(step, budget.steps);
        opt.groups.forEach((g, i) => (g.lr = schedule(baseLrs[i], step)));
        tidy(() => {
          opt.zeroGrad();
          const parts = microBatches ? [share(b, 0), share(b, 1)] : [b];
          parts.forEach((part, r) => {
            // Rank 1's running statistics are its own until rank 0's replace them: they never reach the model kept.
            const kept = r === 0 ? null : buffers.map((t) => t.clone());
            const loss = model.loss(model.run(inputsOf(part)), targetsOf(part), { labelSmoothing: o.labelSmoothing });
            loss.mul(part.y.length / b.y.length).backward();
            kept?.forEach((t, i) => buffers[i].copy_(t));
          });
          opt.step();
        });
        step++;
      }
    }
    assert.equal(step, DATA.steps);
    return new Map([...model.stateDict()].map(([k, t]) => [k, t.toArray()]));
  } finally {
    await train.close();
    opt.dispose();
    model.dispose();
  }
}

/** Largest |a − b| / (atol + rtol·|b|) over the tensors of b, and the largest |a − b| / max(1, |b|). */
function compare(a: State, b: State): { ratio: number; relative: number } {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  let ratio = 0, relative = 0;
  for (const [k, values] of b) {
    const u = a.get(k)!;
    values.forEach((v, i) => {
      const d = Math.abs(u[i] - v);
      ratio = Math.max(ratio, d / (ATOL + RTOL * Math.abs(v)));
      relative = Math.max(relative, d / Math.max(1, Math.abs(v)));
    });
  }
  return { ratio, relative };
}

test('train --nproc-per-node 2, finetune with BN training: the ranks\' micro-batches with averaged gradients and rank 0\'s BN statistics, within rtol 1e-4', { timeout: 400_000 }, async (t) => {
  const one = path.join(tmpDir('dp-bn-one'), 'run'), two = path.join(tmpDir('dp-bn-two'), 'run');
  const r1 = cli(...ARGS, '--out', one);
  assert.equal(r1.status, 0, r1.stderr);
  const r2 = cli(...ARGS, '--out', two, '--nproc-per-node', '2');
  assert.equal(r2.status, 0, r2.stderr); // includes the trainer's check that both replicas ended bit-identical
  // Rank 0 alone wrote: the same files as one process, one log line per epoch, nothing half-written.
  assert.deepEqual(fs.readdirSync(two).sort(), fs.readdirSync(one).sort());
  assert.equal(logLines(two), logLines(one));
  assert.deepEqual(tempFiles(two), []);

  const [oneState, twoState] = [checkpointModel(one), checkpointModel(two)];
  const whole = compare(await reference(false), oneState);
  const split = compare(await reference(true), twoState);
  const worldSize = compare(twoState, oneState);
  t.diagnostic(`reference on whole batches vs 1 process: ${whole.relative.toPrecision(3)}; micro-batch reference vs 2 ranks: ${split.relative.toPrecision(3)} (ratio to tolerance ${split.ratio.toPrecision(3)}); 2 ranks vs 1 process: ${worldSize.relative.toPrecision(3)}`);
  assert.ok(whole.ratio <= 1, `the whole-batch reference does not reproduce the one-process run (ratio ${whole.ratio})`);
  assert.ok(split.ratio <= 1, `2 ranks vs the micro-batch reference beyond rtol ${RTOL}, atol ${ATOL} (ratio ${split.ratio})`);
  // BN's per-rank statistics make the 2-rank run another training than one process's: the check can tell them apart.
  assert.ok(worldSize.ratio > 100, `2 ranks are indistinguishable from one process (ratio ${worldSize.ratio})`);
});
