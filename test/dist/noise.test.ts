/**
 * Per-example noise under data parallelism does not depend on the world size: 2 processes × 1
 * thread on 127.0.0.1 against one process with the same global batch, float64, for AdaFilter with
 * Gumbel gates, SpotTune's Gumbel-softmax choice and tap-probe's dropout (BN in eval mode, so the
 * noise is all that could tell a rank's share from the whole batch). Each rank draws the global
 * batch's noise from the same generator state and keeps its rows; a rank that drew noise for its
 * own share only would train on other gates and masks, which the control below shows is far
 * outside the tolerance. And through the trainer: `adafilter train --method tap-probe` with dropout
 * on 2 processes trains what one process trains, within float32 summation order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers/tmp';
import { decodeSafetensors } from '../../src/io/safetensors';
import { manualSeed, randn, withBatchRows, perExample } from '../../src/engine/random';
import { tensor } from '../../src/engine/creation';
import { tidy } from '../../src/engine/scope';
import { dropout } from '../../src/nn/functional';
import { cli, SMALL } from '../train/helpers';
import { runWorkers } from './run-workers';
import { NOISE_KINDS, NoiseKind, makeNoiseTrainee, noiseBatch, trainNoisy, trainedValues } from './workers/noise-training';

type Params = Record<string, number[]>;
const NOISE_SEED = 300;
const TOLERANCE = 1e-10;

function oneProcess(kind: NoiseKind, seed: number): { initial: Params; final: Params } {
  const t = makeNoiseTrainee(kind);
  const batch = noiseBatch();
  const initial = trainedValues(t.model);
  trainNoisy(t, batch, seed);
  const final = trainedValues(t.model);
  t.optimizer.dispose();
  t.model.dispose();
  batch.x.dispose();
  batch.y.dispose();
  return { initial, final };
}

/** Largest |a − b| / max(1, |b|) over every parameter. */
function worst(a: Params, b: Params): number {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  let w = 0;
  for (const [k, values] of Object.entries(b)) values.forEach((v, i) => { w = Math.max(w, Math.abs(a[k][i] - v) / Math.max(1, Math.abs(v))); });
  return w;
}

test('dropout under withBatchRows: with every row, aten::dropout bit for bit; with a share, that share\'s rows of it', () => {
  tidy(() => {
    manualSeed(1);
    const x = randn([6, 7]);
    const masked = (rows: number[] | null, input = x) => {
      manualSeed(3);
      const run = () => dropout(input, 0.3, true).toArray() as number[];
      return rows ? withBatchRows({ global: 6, rows }, run) : run();
    };
    const whole = masked(null);
    assert.ok(whole.some((v) => v === 0) && whole.some((v) => v !== 0), 'some dropped, some kept');
    assert.deepEqual(masked([0, 1, 2, 3, 4, 5]), whole);
    const share = masked([1, 3, 5], x.indexSelect(0, tensor([1, 3, 5], { dtype: 'int64' })));
    assert.deepEqual(share, [1, 3, 5].flatMap((j) => whole.slice(j * 7, (j + 1) * 7)));
    assert.throws(() => withBatchRows({ global: 6, rows: [0, 2, 4] }, () => perExample([2, 7], 0, (s) => randn(s))), /per-example draw over 2 examples in a pass that holds 3 of 6/);
  });
});

test('Gumbel gates (AdaFilter, SpotTune) and dropout (tap-probe), float64: 2 ranks train what one process trains on the same global batch', { timeout: 300_000 }, async (t) => {
  const out = tmpDir('dist-noise');
  await runWorkers('noise-worker', [out, String(NOISE_SEED)]);
  const [r0, r1] = [0, 1].map((r) => JSON.parse(fs.readFileSync(path.join(out, `rank${r}.json`), 'utf8')) as Record<NoiseKind, Params>);
  for (const kind of NOISE_KINDS) {
    assert.deepEqual(r1[kind], r0[kind], `${kind}: the ranks differ`);
    const one = oneProcess(kind, NOISE_SEED);
    const moved = worst(one.final, one.initial);
    // The control: other noise (another seed) on the same batch trains other weights, by far more than the tolerance.
    const otherNoise = worst(oneProcess(kind, NOISE_SEED + 1).final, one.final);
    const ddp = worst(r0[kind], one.final);
    t.diagnostic(`${kind}: 2 ranks vs 1 process ${ddp.toPrecision(3)}; other noise ${otherNoise.toPrecision(3)}; moved ${moved.toPrecision(3)}`);
    assert.ok(moved > 1e-3, `${kind}: training moved the parameters (${moved})`);
    assert.ok(otherNoise > 1e4 * TOLERANCE, `${kind}: the noise changes what is trained (${otherNoise})`);
    assert.ok(ddp <= TOLERANCE, `${kind}: 2 ranks differ from one process by ${ddp}`);
  }
});

/** Largest |a − b| / max(1, |a|) over the tensors of two safetensors files. */
function fileDifference(a: string, b: string): number {
  const [x, y] = [a, b].map((f) => decodeSafetensors(fs.readFileSync(f), f).tensors);
  assert.deepEqual([...y.keys()].sort(), [...x.keys()].sort());
  let w = 0;
  for (const [k, t] of x) {
    const u = y.get(k)!.toArray();
    t.toArray().forEach((v, i) => { w = Math.max(w, Math.abs(v - u[i]) / Math.max(1, Math.abs(v))); });
  }
  for (const t of [...x.values(), ...y.values()]) t.dispose();
  return w;
}

test('train --method tap-probe with dropout 0.5 on 2 processes: the weights one process trains, within float32 summation order', { timeout: 300_000 }, (t) => {
  const args = (p: number) => ['train', '--method', 'tap-probe', '--opt', 'taps=layer2.2:mean,layer3.2:max', '--opt', 'hidden=16', '--opt', `dropout=${p}`, ...SMALL, '--steps', '6'];
  const runs = ['one', 'two', 'none'].map((tag) => path.join(tmpDir(`dp-dropout-${tag}`), 'run'));
  const r1 = cli(...args(0.5), '--out', runs[0]);
  assert.equal(r1.status, 0, r1.stderr);
  const r2 = cli(...args(0.5), '--out', runs[1], '--nproc-per-node', '2');
  assert.equal(r2.status, 0, r2.stderr);
  // The control: without dropout the same run trains other weights, so masks that differed would show.
  const r3 = cli(...args(0), '--out', runs[2]);
  assert.equal(r3.status, 0, r3.stderr);
  const checkpoint = (dir: string) => path.join(dir, 'checkpoint.safetensors');
  const ddp = fileDifference(checkpoint(runs[0]), checkpoint(runs[1]));
  const masks = fileDifference(checkpoint(runs[0]), checkpoint(runs[2]));
  t.diagnostic(`tap-probe dropout 0.5, 2 ranks vs 1 process: ${ddp.toPrecision(3)} (checkpoint, momentum included); without dropout: ${masks.toPrecision(3)}`);
  assert.ok(ddp <= 1e-5, `2 ranks differ from one process by ${ddp}`);
  assert.ok(masks > 1e-3, `dropout changes what is trained (${masks})`);
});
