import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SMALL, cli, tmpDir } from './helpers';

test('bad gate and precise-BN options: one line on stderr, exit 2, no run folder', () => {
  const base = tmpDir('gate-opts');
  const cases: [string[], RegExp][] = [
    [['--opt', 'gateMode=coin'], /adafilter: gateMode must be one of st, gumbel, gumbel-anneal, got "coin"/],
    [['--opt', 'warmup=-0.2'], /adafilter: warmup must be a fraction of the run in \[0, 0\.95\], got -0\.2/],
    [['--opt', 'gatePhase=0.5', '--opt', 'warmup=0.5'], /warmup \+ gatePhase must leave part of the run/],
    [['--precise-bn', 'sometimes'], /precise-bn: expected auto, on, off, got sometimes/],
  ];
  for (const [args, re] of cases) {
    const out = path.join(base, 'out');
    const r = cli('train', ...SMALL, '--method', 'adafilter', '--epochs', '1', ...args, '--out', out);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!fs.existsSync(out), 'nothing written for bad input');
  }
});

test('the gate lr defaults to the multiple of --lr that validation chose for the method; an explicit one wins', () => {
  const { resolveOptions } = require('../../src/train/options') as typeof import('../../src/train/options');
  const { getMethod } = require('../../src/methods/registry') as typeof import('../../src/methods/registry');
  for (const m of ['adafilter', 'adafilter-static', 'spottune', 'finetune']) {
    const factor = getMethod(m).gateLrFactor ?? 1;
    assert.equal(resolveOptions({ data: 'mnist', method: m, lr: 0.02 }).gateLr, 0.02 * factor, m);
    assert.equal(resolveOptions({ data: 'mnist', method: m, lr: 0.02, gateLr: 0.5 }).gateLr, 0.5, m);
  }
  assert.equal(getMethod('adafilter').gateLrFactor, 1000);
  assert.equal(getMethod('finetune').gateLrFactor, undefined);
});
