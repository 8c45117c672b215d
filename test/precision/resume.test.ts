/**
 * A bf16 run: run.json records the precision and device; stopped mid-epoch and resumed from its
 * checkpoint it ends exactly like the uninterrupted bf16 run; resuming it in fp32 is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fineTune, Interrupted } from '../../src/train/trainer';
import { TrainOptions } from '../../src/train/options';
import { evaluate } from '../../src/train/evaluate-run';
import { SMALL_API, tmpDir } from '../train/helpers';

const run = (out: string, extra: Partial<TrainOptions> = {}) => fineTune({
  ...SMALL_API, method: 'adafilter', epochs: 2, precision: 'bf16', device: 'auto', out, ...extra,
} as TrainOptions);
const file = (d: string, f: string) => fs.readFileSync(path.join(d, f));
const log = (d: string) => file(d, 'log.jsonl').toString().split('\n').filter(Boolean)
  .map((l) => { const { seconds: _s, imagesPerSec: _i, time: _t, ...rest } = JSON.parse(l); return rest; });

test('a bf16 run stopped mid-epoch resumes to exactly the uninterrupted run; run.json records bf16 on the cpu; eval uses it', async () => {
  const base = tmpDir('bf16-resume');
  const whole = path.join(base, 'whole'), stopped = path.join(base, 'stopped');
  const a = await run(whole);
  const config = JSON.parse(file(whole, 'run.json').toString());
  assert.equal(config.precision, 'bf16');
  assert.equal(config.device, 'cpu', 'auto is the cpu without a GPU');
  const e = await evaluate(whole);
  assert.equal(e.acc, a.test.acc, "eval reproduces result.json in the run's own precision");
  assert.equal(e.loss, a.test.loss);
  const e32 = await evaluate(whole, { precision: 'fp32' });
  assert.ok(Math.abs(e32.loss - a.test.loss) < 0.05 * a.test.loss, `fp32 evaluation of bf16 weights is close (${e32.loss} vs ${a.test.loss})`);

  const stop = new AbortController();
  let steps = 0;
  await assert.rejects(run(stopped, {
    signal: stop.signal,
    onEvent: (e) => { if (e.type === 'step' && ++steps === 3) stop.abort(); },
  }), Interrupted);
  assert.ok(!fs.existsSync(path.join(stopped, 'result.json')), 'stopped before the end');
  const b = await run(stopped, { resume: true });

  assert.ok(file(whole, 'model.safetensors').equals(file(stopped, 'model.safetensors')), 'same best weights, byte for byte');
  assert.deepEqual(log(stopped), log(whole));
  assert.deepEqual(b.test, a.test);
  assert.deepEqual(b.gates, a.gates);

  await assert.rejects(run(stopped, { resume: true, precision: 'fp32' }), /cannot resume, the run was started with other settings: precision "bf16" → "fp32"/);
});
