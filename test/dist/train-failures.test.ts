/**
 * A data-parallel `adafilter train` that loses a worker, or is stopped with Ctrl-C: real processes
 * (2 × 1 thread on 127.0.0.1), real data. A SIGKILLed rank makes the launcher exit non-zero naming
 * it, long before --dist-timeout (its peer's collective fails on the closed connection), with
 * nothing half-written; Ctrl-C (SIGINT to the launcher's process group, as a terminal sends it)
 * stops every rank at the same step with the checkpoint saved. Either run then finishes with
 * --resume in one process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, ChildProcess } from 'node:child_process';
import { CLI, ROOT, SMALL, cli, logLines, tempFiles, tmpDir } from '../train/helpers';

const RUN = ['train', '--method', 'finetune', ...SMALL, '--steps', '60'];
const TIMEOUT_S = 120;

/** The launcher's worker of the given rank: its child whose environment says RANK=rank. */
function workerPid(launcher: number, rank: number): number | null {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== launcher) continue;
      if (fs.readFileSync(`/proc/${d}/environ`, 'utf8').split('\0').includes(`RANK=${rank}`)) return Number(d);
    } catch { /* gone meanwhile */ }
  }
  return null;
}

function start(args: string[], o: { detached?: boolean } = {}): { child: ChildProcess; stderr: () => string; stdout: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: o.detached ?? false });
  let err = '', out = '';
  child.stderr!.on('data', (d) => (err += d));
  child.stdout!.on('data', (d) => (out += d));
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, stderr: () => err, stdout: () => out, exit };
}

async function until(ok: () => boolean, what: string, ms = 180_000): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every file of the run folder parses: no half-written JSON, log or safetensors. */
function wholeFiles(dir: string): void {
  assert.deepEqual(tempFiles(dir), []);
  JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
  for (const l of fs.readFileSync(path.join(dir, 'log.jsonl'), 'utf8').trim().split('\n')) JSON.parse(l);
  for (const f of ['checkpoint.safetensors', 'model.safetensors']) {
    const b = fs.readFileSync(path.join(dir, f));
    const header = Number(b.readBigUInt64LE(0));
    JSON.parse(b.subarray(8, 8 + header).toString('utf8'));
  }
}

function resumeToTheEnd(dir: string): void {
  const r = cli(...RUN, '--out', dir, '--resume');
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(fs.readFileSync(path.join(dir, 'result.json'), 'utf8'));
  const log = fs.readFileSync(path.join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(log[log.length - 1].epoch, result.epochs);
  assert.deepEqual(log.map((l) => l.epoch), [...new Set(log.map((l) => l.epoch))].sort((a, b) => a - b));
}

test('a worker SIGKILLed mid-run: the launcher exits 1 naming rank 1, nothing half-written, --resume (1 process) finishes', { timeout: 600_000 }, async (t) => {
  const dir = path.join(tmpDir('dp-kill'), 'run');
  const job = start([...RUN, '--out', dir, '--nproc-per-node', '2', '--dist-timeout', String(TIMEOUT_S)]);
  await until(() => logLines(dir) >= 1, 'the first validation');
  const victim = workerPid(job.child.pid!, 1);
  assert.ok(victim, 'rank 1 found among the launcher\'s children');
  const killedAt = Date.now();
  process.kill(victim, 'SIGKILL');
  const code = await job.exit;
  const seconds = (Date.now() - killedAt) / 1000;
  t.diagnostic(`launcher exited ${code} ${seconds.toFixed(1)} s after the kill; last line: ${job.stderr().trim().split('\n').pop()}`);
  assert.equal(code, 1, job.stderr());
  assert.match(job.stderr(), /launch: rank 1 \(local rank 1, pid \d+\) was killed by SIGKILL/);
  // Rank 0 learnt of it from its failed collective, not from the timeout.
  assert.ok(seconds < TIMEOUT_S, `${seconds} s`);
  assert.equal(fs.existsSync(path.join(dir, 'result.json')), false);
  wholeFiles(dir);
  resumeToTheEnd(dir);
});

test('Ctrl-C to a data-parallel run: every rank stops at the same step, checkpoint saved, exit 130; --resume (1 process) finishes', { timeout: 600_000 }, async () => {
  const dir = path.join(tmpDir('dp-sigint'), 'run');
  const job = start([...RUN, '--out', dir, '--nproc-per-node', '2', '--dist-timeout', String(TIMEOUT_S)], { detached: true });
  await until(() => logLines(dir) >= 1, 'the first validation');
  const before = fs.statSync(path.join(dir, 'checkpoint.safetensors')).mtimeMs;
  process.kill(-job.child.pid!, 'SIGINT'); // the launcher's process group: itself and both workers
  const code = await job.exit;
  assert.equal(code, 130, job.stderr());
  assert.match(job.stderr(), /every rank stopped at the same step; its checkpoint is saved/);
  assert.ok(fs.statSync(path.join(dir, 'checkpoint.safetensors')).mtimeMs > before, 'a checkpoint saved at the stop');
  wholeFiles(dir);
  resumeToTheEnd(dir);
});

test('a loss that turns non-finite: both ranks stop at the same step as one process does, exit 2, only run.json written', { timeout: 300_000 }, () => {
  const diverge = ['train', '--method', 'finetune', ...SMALL, '--steps', '9', '--lr', '1e20'];
  const stepOf = (stderr: string) => [...stderr.matchAll(/the loss became (?:NaN|-?Infinity) at (epoch \d+, step \d+)/g)].map((m) => m[1]);
  const one = cli(...diverge, '--out', path.join(tmpDir('dp-nan-one'), 'run'));
  assert.equal(one.status, 2, one.stderr);
  const dir = path.join(tmpDir('dp-nan-two'), 'run');
  const two = cli(...diverge, '--out', dir, '--nproc-per-node', '2');
  assert.equal(two.status, 2, two.stderr);
  const [expected] = stepOf(one.stderr);
  assert.ok(expected, one.stderr);
  // Each rank's own line (the launcher may stop the slower one first), then the launcher's naming a rank.
  const steps = stepOf(two.stderr.split('\n').filter((l) => !l.startsWith('launch:')).join('\n'));
  assert.ok(steps.length >= 1 && steps.every((s) => s === expected), `${expected} vs ${steps.join(' | ')}`);
  assert.match(two.stderr, /launch: rank [01] \(local rank [01], pid \d+\) exited with code 2: .*the loss became/);
  assert.deepEqual(fs.readdirSync(dir), ['run.json']);
});

test('a one-process run stopped with Ctrl-C continues on 2 processes with --resume (the checkpoint does not depend on the process count)', { timeout: 600_000 }, async () => {
  const dir = path.join(tmpDir('dp-grow'), 'run');
  const job = start([...RUN, '--out', dir]);
  await until(() => logLines(dir) >= 1, 'the first validation');
  job.child.kill('SIGINT');
  assert.equal(await job.exit, 130, job.stderr());
  const stoppedAt = logLines(dir);
  const r = cli(...RUN, '--out', dir, '--resume', '--nproc-per-node', '2');
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(fs.readFileSync(path.join(dir, 'result.json'), 'utf8'));
  const log = fs.readFileSync(path.join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(log.length > stoppedAt, 'the 2-process part validated too');
  assert.equal(log[log.length - 1].epoch, result.epochs);
  assert.deepEqual(log.map((l) => l.epoch), [...new Set(log.map((l) => l.epoch))].sort((a, b) => a - b));
  wholeFiles(dir);
});
