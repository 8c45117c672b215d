import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SMALL, cli, cliUntil, exited, logLines, tmpDir } from './helpers';

const weights = (d: string) => fs.readFileSync(path.join(d, 'model.safetensors'));
const result = (d: string) => JSON.parse(fs.readFileSync(path.join(d, 'result.json'), 'utf8'));
const log = (d: string) => fs.readFileSync(path.join(d, 'log.jsonl'), 'utf8').split('\n').filter(Boolean)
  .map((l) => { const { seconds: _s, imagesPerSec: _i, time: _t, ...rest } = JSON.parse(l); return rest; });

const args = (out: string) => ['train', ...SMALL, '--method', 'adafilter', '--epochs', '3', '--out', out];

test('a run killed with SIGKILL and resumed ends exactly like an uninterrupted run', async () => {
  const base = tmpDir('kill');
  const whole = path.join(base, 'whole'), killed = path.join(base, 'killed');
  const r0 = cli(...args(whole));
  assert.equal(r0.status, 0, r0.stderr);

  const child = await cliUntil(args(killed), () => logLines(killed) >= 1);
  child.kill('SIGKILL');
  await exited(child);
  assert.ok(!fs.existsSync(path.join(killed, 'result.json')), 'killed before the end');
  const r1 = cli(...args(killed), '--resume');
  assert.equal(r1.status, 0, r1.stderr);
  assert.match(r1.stderr, /resumed at epoch/);

  assert.ok(weights(whole).equals(weights(killed)), 'same best weights');
  assert.deepEqual(log(killed), log(whole), 'same per-epoch numbers');
  const a = result(whole), b = result(killed);
  assert.deepEqual(b.test, a.test);
  assert.deepEqual(b.gates, a.gates);
  assert.equal(b.bestEpoch, a.bestEpoch);
});

test('SIGINT mid-epoch saves a checkpoint and exits 130; --resume then matches an uninterrupted run', async () => {
  const base = tmpDir('sigint');
  const whole = path.join(base, 'whole'), stopped = path.join(base, 'stopped');
  const more = ['--shots', '60']; // 23 steps per epoch: room to stop inside one
  assert.equal(cli(...args(whole), ...more).status, 0);
  // Stop it early in the second epoch.
  const child = await cliUntil([...args(stopped), ...more], () => logLines(stopped) >= 1);
  child.kill('SIGINT');
  const code = await exited(child);
  if (code === 0) return assert.fail('the run finished before SIGINT arrived; the test needs a longer run');
  assert.equal(code, 130);
  assert.ok(fs.existsSync(path.join(stopped, 'checkpoint.safetensors')));
  assert.ok(!fs.existsSync(path.join(stopped, 'result.json')));
  const r = cli(...args(stopped), ...more, '--resume');
  assert.equal(r.status, 0, r.stderr);
  assert.ok(weights(whole).equals(weights(stopped)));
  assert.deepEqual(log(stopped), log(whole));
});

test('--resume refuses a run started with another backbone or other classes, changing nothing', () => {
  const dir = path.join(tmpDir('incompat'), 'run');
  assert.equal(cli('train', ...SMALL, '--method', 'finetune', '--epochs', '1', '--out', dir).status, 0);
  const before = fs.readFileSync(path.join(dir, 'checkpoint.safetensors'));
  for (const change of [['--backbone', 'resnet32'], ['--data', 'quickdraw:300-303'], ['--method', 'adafilter']]) {
    const a = [...SMALL, '--method', 'finetune', '--epochs', '1', '--out', dir];
    const i = a.indexOf(change[0]);
    if (i >= 0) a[i + 1] = change[1]; else a.push(...change);
    const r = cli('train', ...a, '--resume');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /cannot resume, the run was started with other settings/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
  assert.ok(before.equals(fs.readFileSync(path.join(dir, 'checkpoint.safetensors'))));
  // Without --resume, an existing run is never overwritten.
  const r = cli('train', ...SMALL, '--method', 'finetune', '--epochs', '1', '--out', dir);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /already holds a run/);
});
