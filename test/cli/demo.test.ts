import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const cli = path.resolve(__dirname, '..', '..', '..', 'bin', 'adafilter.js');

test('demo: the shipped backbone, finetune vs adafilter, the table and a report (short budget)', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'adafilter-demo-'));
  try {
    const r = spawnSync(process.execPath, [cli, 'demo', '--seeds', '1', '--steps', '5', '--out', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /finetune\s+\d+\.\d\d ± \d+\.\d\d\s+—/);
    assert.match(r.stdout, /adafilter\s+\d+\.\d\d ± \d+\.\d\d\s+[+-]\d+\.\d\d pts/);
    for (const f of ['compare.json', 'report.html', 'report.md', 'finetune-s0/result.json', 'adafilter-s0/result.json']) {
      assert.ok(fs.existsSync(path.join(out, f)), f);
    }
    const c = JSON.parse(fs.readFileSync(path.join(out, 'compare.json'), 'utf8'));
    assert.equal(c.backbone, 'default');
    assert.deepEqual(c.methods, ['finetune', 'adafilter']);
    assert.match(fs.readFileSync(path.join(out, 'report.html'), 'utf8'), /<svg/);
    // --steps reaches the trainer's budget rule: 5 steps exactly, the same for both methods.
    for (const m of ['finetune', 'adafilter']) {
      const cfg = JSON.parse(fs.readFileSync(path.join(out, `${m}-s0`, 'run.json'), 'utf8'));
      assert.equal(cfg.steps, 5, m);
      assert.match(cfg.budgetRule, /^--steps 5 → 5 steps/, m);
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('demo: --steps and --epochs together is one line, exit 2, nothing written', () => {
  const out = path.join(os.tmpdir(), `adafilter-demo-both-${process.pid}`);
  const r = spawnSync(process.execPath, [cli, 'demo', '--steps', '5', '--epochs', '1', '--out', out], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--steps or --epochs, not both/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.ok(!fs.existsSync(out));
});
