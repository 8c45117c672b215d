import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { SMALL, cli, tempFiles, tmpDir } from './helpers';

test('train → eval → predict from the CLI, with --json output', () => {
  const base = tmpDir('cli');
  const dir = path.join(base, 'run');
  const r = cli('train', ...SMALL, '--method', 'l2sp', '--epochs', '1', '--out', dir, '--json');
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.equal(res.method, 'l2sp');
  assert.match(r.stderr, /epoch 1\/1: train loss/); // plain progress lines when not a terminal
  const e = cli('eval', dir, '--json');
  assert.equal(e.status, 0, e.stderr);
  assert.equal(JSON.parse(e.stdout).acc, res.test.acc);
  const v = cli('eval', dir, '--split', 'val', '--json');
  assert.equal(JSON.parse(v.stdout).acc, res.val.acc, 'best validation accuracy is reproduced by eval');
  const p = cli('predict', dir, path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'models', 'nonexistent.png'));
  assert.equal(p.status, 2);
  assert.match(p.stderr, /nonexistent\.png: cannot read/);
});

test('compare: every method on identical data, mean ± std table, error change vs finetune; finished runs reused', () => {
  const out = path.join(tmpDir('compare'), 'cmp');
  const r = cli('compare', ...SMALL, '--methods', 'finetune,adafilter', '--seeds', '2', '--epochs', '1', '--out', out, '--json');
  assert.equal(r.status, 0, r.stderr);
  const c = JSON.parse(r.stdout);
  assert.equal(c.runs.length, 4);
  for (const row of c.summary) {
    const accs = c.runs.filter((x: { method: string }) => x.method === row.method).map((x: { testAcc: number }) => x.testAcc);
    const mean = (accs[0] + accs[1]) / 2;
    assert.ok(Math.abs(row.mean - mean) < 1e-12);
    assert.ok(Math.abs(row.std - Math.abs(accs[0] - accs[1]) / Math.sqrt(2)) < 1e-12);
  }
  const ft = c.summary.find((x: { method: string }) => x.method === 'finetune');
  const af = c.summary.find((x: { method: string }) => x.method === 'adafilter');
  assert.equal(ft.errorChange, 0);
  assert.ok(Math.abs(af.errorChange - 100 * (ft.mean - af.mean)) < 1e-9);
  // Same seed → same splits for every method: the test sets have the same size and classes.
  const res = (m: string, s: number) => JSON.parse(fs.readFileSync(path.join(out, `${m}-s${s}`, 'result.json'), 'utf8'));
  assert.deepEqual(Object.keys(res('finetune', 0).test.perClass), Object.keys(res('adafilter', 0).test.perClass));
  assert.equal(res('finetune', 1).test.examples, res('adafilter', 1).test.examples);
  const t = cli('compare', ...SMALL, '--methods', 'finetune,adafilter', '--seeds', '2', '--epochs', '1', '--out', out);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /adafilter\s+\d+\.\d\d ± \d+\.\d\d/);
  assert.doesNotMatch(t.stderr, /training:/, 'finished runs are not trained again');
});

test('bad input: one line on stderr, exit code 2, no partial files', () => {
  const base = tmpDir('bad');
  const cases: [string[], RegExp][] = [
    [['train', ...SMALL, '--bogus'], /train: Unknown option '--bogus'/],
    [['train', ...SMALL, '--method', 'nope'], /unknown method 'nope'/],
    [['train', '--data', 'folder:/nonexistent/data', '--backbone', 'resnet20'], /nonexistent/],
    [['train', '--data', 'quickdraw:300-302', '--backbone', 'resnet99'], /unknown backbone 'resnet99'/],
    [['train', ...SMALL, '--epochs', '0'], /epochs/],
    [['train', ...SMALL, '--opt', 'nosuch=1'], /unknown option 'nosuch'/],
    [['compare', ...SMALL, '--methods', 'finetune,zzz'], /unknown method 'zzz'/],
    [['eval', path.join(base, 'missing')], /no such run folder/],
    [['eval', base], /not a run folder/],
    [['predict', base], /expected RUN_DIR and at least one IMAGE/],
  ];
  for (const [args, re] of cases) {
    const r = cli(...args, ...(['train', 'compare'].includes(args[0]) ? ['--out', path.join(base, 'out')] : []));
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.ok(!fs.existsSync(path.join(base, 'out')), 'nothing written for bad input');
});

test('unreadable data: a folder whose images cannot be read', { skip: process.getuid?.() === 0 ? false : 'needs root to make an unreadable file readable again' }, () => {
  // root reads everything, so unreadable means: a broken image file in a class folder.
  const base = tmpDir('unreadable');
  for (const c of ['a', 'b']) {
    fs.mkdirSync(path.join(base, 'data', c), { recursive: true });
    for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(base, 'data', c, `${i}.png`), 'not a png');
  }
  const r = cli('train', '--backbone', 'resnet20', '--data', path.join(base, 'data'), '--out', path.join(base, 'run'), '--epochs', '1');
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /not an image|corrupt|cannot/);
});

test('a NaN loss stops the run with exit 2, keeping the last good checkpoint', () => {
  const dir = path.join(tmpDir('nan'), 'run');
  assert.equal(cli('train', ...SMALL, '--method', 'finetune', '--epochs', '1', '--out', dir).status, 0);
  const good = fs.readFileSync(path.join(dir, 'checkpoint.safetensors'));
  const dir2 = path.join(path.dirname(dir), 'run2');
  const r = cli('train', ...SMALL, '--method', 'finetune', '--epochs', '3', '--lr', '1e30', '--schedule', 'constant', '--out', dir2);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /the loss became (NaN|Infinity|-Infinity) at epoch \d+, step \d+; stopped/);
  assert.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('adafilter')).length, 1);
  assert.ok(!fs.existsSync(path.join(dir2, 'result.json')));
  assert.deepEqual(tempFiles(dir2), []);
  assert.ok(good.length > 0);
});

test('a full disk: exit 2 saying so, no temporary or partial files, earlier files intact', { skip: process.getuid?.() === 0 ? false : 'mounting a small tmpfs needs root' }, () => {
  const mnt = tmpDir('full');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=700k', 'tmpfs', mnt]);
  } catch (e) {
    return assert.fail(`cannot mount a tmpfs to fill (${(e as Error).message})`);
  }
  try {
    const dir = path.join(mnt, 'run');
    const r = cli('train', ...SMALL, '--method', 'finetune', '--epochs', '1', '--out', dir);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /cannot write \(the disk is full\)/);
    assert.deepEqual(tempFiles(mnt), []);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
    assert.equal(cfg.method, 'finetune', 'files written before the disk filled are whole');
  } finally {
    execFileSync('umount', [mnt]);
  }
});
