/**
 * `bench throughput --nproc-per-node 2` on a tiny configuration (resnet20, global batch 4, one
 * timed step a round, two rounds): real worker processes under DDP. The JSON's fields agree with
 * each other and with the model (gradient bytes counted here from resnet20's own parameters, the
 * buckets covering them once, as c10d's assignment fills them); no timing is judged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildModel } from '../../src/models/registry';
import { cli } from '../train/helpers';

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));

test('bench throughput --nproc-per-node 2: images/s of both sides, efficiency, buckets and all-reduce bytes, consistent with each other and with the model', { timeout: 180_000 }, () => {
  const r = cli('bench', 'throughput', '--nproc-per-node', '2', '--arch', 'resnet20', '--batch', '4', '--threads', '1',
    '--steps', '1', '--warmup', '1', '--rounds', '2', '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.nproc_per_node, 2);
  assert.equal(j.global_batch, 4);
  assert.equal(j.rank_batch * j.nproc_per_node, j.global_batch);
  assert.equal(j.one_process.threads, j.nproc_per_node * j.threads_per_process);
  assert.equal(j.data_parallel.processes, 2);
  assert.equal(j.steps_timed, 2);
  for (const side of [j.one_process, j.data_parallel]) {
    assert.equal(side.train_steps_ms.length, j.steps_timed);
    assert.ok(side.train_steps_ms.every((ms: number) => ms > 0));
    assert.ok(close(side.train_img_s, j.global_batch / (side.train_ms / 1e3)));
  }
  assert.equal(j.data_parallel.rank_train_ms.length, 2);
  assert.ok(close(j.scaling_efficiency, j.data_parallel.train_img_s / j.one_process.train_img_s));

  // Gradients: every parameter of resnet20 (10 classes), float32, counted here.
  const model = buildModel('resnet20', 10);
  const params = model.parameters();
  const bytes = params.reduce((s, p) => s + p.numel * 4, 0);
  model.dispose();
  const g = j.gradients;
  assert.equal(g.parameters, params.length);
  assert.equal(g.bytes, bytes);
  assert.equal(g.bucket_count, g.bucket_bytes.length);
  assert.equal(g.bucket_parameters.length, g.bucket_count);
  assert.equal(g.bucket_bytes.reduce((a: number, b: number) => a + b, 0), bytes, 'the buckets hold every gradient once');
  assert.equal(g.bucket_parameters.reduce((a: number, b: number) => a + b, 0), params.length);
  // c10d closes a bucket once it reaches its limit (1 MiB for the first, then 25 MiB): only the last may be smaller.
  g.bucket_bytes.slice(0, -1).forEach((b: number, i: number) => assert.ok(b >= (i === 0 ? g.first_bucket_mb : g.bucket_cap_mb) * 2 ** 20, `bucket ${i}: ${b} bytes`));
  assert.ok(bytes > 2 ** 20 && g.bucket_count >= 2, 'resnet20\'s 1.04 MiB of gradients fill more than the first bucket');
  assert.equal(j.allreduce.calls_per_step, g.bucket_count);
  assert.equal(j.allreduce.bytes_per_step, bytes);
  assert.equal(j.allreduce.ring_bytes_sent_per_rank_per_step, Math.round(((2 * (2 - 1)) / 2) * bytes));
});

test('bench throughput --nproc-per-node: a batch that does not split, or fewer than 2 processes, is one line and exit 2', () => {
  const uneven = cli('bench', 'throughput', '--nproc-per-node', '2', '--batch', '5', '--json');
  assert.equal(uneven.status, 2, uneven.stderr);
  assert.match(uneven.stderr.trim(), /^adafilter bench: .*--batch 5 does not split evenly over 2 processes[^\n]*$/);
  const one = cli('bench', 'throughput', '--nproc-per-node', '1');
  assert.equal(one.status, 2, one.stderr);
  assert.match(one.stderr, /--nproc-per-node must be an integer of at least 2/);
  const bf16 = cli('bench', 'throughput', '--nproc-per-node', '2', '--precision', 'bf16');
  assert.equal(bf16.status, 2, bf16.stderr);
  assert.match(bf16.stderr, /--precision is not supported/);
});
