// The package as a new user gets it: `npm pack`, `npm install` of the tarball into an empty
// project (nothing beyond the npm registry; npm runs no dependency install scripts), then the
// installed CLI and API. The addon is really built here (`adafilter setup`, about a minute on
// 2 cores): that is the step an installed package cannot skip.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync, SpawnSyncReturns } from 'node:child_process';
import { tmpDir } from '../helpers/tmp';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const TINY = ['--backbone', 'resnet20', '--data', 'quickdraw:300-302', '--shots', '6', '--batch', '8', '--threads', '1', '--workers', '0', '--epochs', '1'];
const TINY_API = "{ backbone: 'resnet20', data: 'quickdraw:300-302', shots: 6, batch: 8, threads: 1, workers: 0, epochs: 1, method: 'finetune' }";

// Under `npm test` the environment carries npm_* settings of this project (its package.json, its
// prefix, its .npmrc), which the user's npm in another folder would not see; where to reach the
// registry is the user's and stays.
const KEEP = /^npm_config_(registry|proxy|https_proxy|noproxy|cafile|ca|strict_ssl|cache|userconfig)$/i;
const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) || KEEP.test(k)));

function sh(cmd: string, args: string[], cwd: string, extra: NodeJS.ProcessEnv = {}, timeoutMs = 300_000): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env: { ...env, ...extra }, encoding: 'utf8', timeout: timeoutMs });
}

const show = (r: SpawnSyncReturns<string>) => `exit ${r.status}${r.error ? ` (${r.error.message})` : ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

const unreachable = ((): string | false => {
  const r = sh('npm', ['ping', '--fetch-retries=0', '--fetch-timeout=15000'], ROOT, {}, 30_000);
  const why = (r.stderr || '').split('\n').find((l) => /FetchError|ERR/.test(l))?.replace(/^npm error\s*/, '') ?? r.error?.message ?? `exit ${r.status}`;
  return r.status === 0 ? false : `the npm registry is unreachable (npm ping: ${why.trim()})`;
})();
const opts = { skip: unreachable, timeout: 600_000 };

let app = '';
let out = '';
const adafilter = (args: string[], extra: NodeJS.ProcessEnv = {}) => sh(path.join(app, 'node_modules', '.bin', 'adafilter'), args, app, extra);

before(() => {
  if (unreachable) return;
  const base = tmpDir('adafilter-install');
  const t0 = Date.now();
  const pack = sh('npm', ['pack', '--pack-destination', base, '--json'], ROOT);
  assert.equal(pack.status, 0, show(pack));
  const tarball = path.join(base, (JSON.parse(pack.stdout) as { filename: string }[])[0].filename);
  app = path.join(base, 'app');
  out = path.join(base, 'out');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  const inst = sh('npm', ['install', tarball, '--no-audit', '--no-fund', '--loglevel=error'], app, {}, 600_000);
  assert.equal(inst.status, 0, show(inst));
  console.log(`npm pack + npm install: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}, { timeout: 900_000 });

test('the tarball carries what the CLI loads and no tests or build output', opts, () => {
  const pkg = path.join(app, 'node_modules', 'adafilter');
  for (const f of ['bin/adafilter.js', 'dist/src/index.js', 'dist/src/cli/main.js', 'dist/bench/throughput.js', 'bench/peer/throughput.py',
    'native/binding.gyp', 'native/build.js', 'native/config.js', 'native/src/addon.cc', 'weights/default.safetensors']) {
    assert.ok(fs.existsSync(path.join(pkg, f)), `${f} is in the package`);
  }
  for (const f of ['dist/test', 'test', 'native/build', 'scripts/setup.sh']) assert.ok(!fs.existsSync(path.join(pkg, f)), `${f} is not in the package`);
  assert.ok(!fs.existsSync(path.join(app, 'node_modules', 'onnxruntime-node')), 'onnxruntime-node (tests only) is not installed');
});

test('before setup: the CLI runs, and commands that need the addon say how to build it', opts, () => {
  const help = adafilter(['--help']);
  assert.equal(help.status, 0, show(help));
  assert.match(help.stdout, /^ {2}setup {8}build the native addon/m);
  const r = adafilter(['train', ...TINY, '--out', path.join(out, 'unbuilt')]);
  assert.equal(r.status, 2, show(r));
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /native addon is not built .*run `npx adafilter setup`/);
});

const addonFile = () => path.join(app, 'node_modules', 'adafilter', 'native', 'build', 'Release', 'adafilter.node');

test('setup: a missing prerequisite is one line and exit 2; a broken addon is named; setup builds it, and a second run only checks it', opts, () => {
  for (const [extra, re] of [
    [{ LIBTORCH: '/nonexistent/libtorch' }, /LIBTORCH=\/nonexistent\/libtorch: missing .*include/],
    [{ CXX: '/nonexistent/g++' }, /no C\+\+ compiler \('\/nonexistent\/g\+\+ --version' fails\)/],
  ] as [NodeJS.ProcessEnv, RegExp][]) {
    const r = adafilter(['setup'], extra);
    assert.equal(r.status, 2, show(r));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, re);
  }
  // An addon that does not load (a copy from another machine, a libtorch since removed) is named, and rebuilt by setup.
  fs.mkdirSync(path.dirname(addonFile()), { recursive: true });
  fs.writeFileSync(addonFile(), 'not a shared object');
  const broken = adafilter(['train', ...TINY, '--out', path.join(out, 'broken')]);
  assert.equal(broken.status, 2, show(broken));
  assert.equal(broken.stderr.trim().split('\n').length, 1, broken.stderr);
  assert.match(broken.stderr, /native addon does not load \(.*\): rebuild it with `npx adafilter setup`/);
  const t0 = Date.now();
  const r = adafilter(['setup', '--jobs', '2']);
  assert.equal(r.status, 0, show(r));
  console.log(`adafilter setup (addon build): ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  assert.match(r.stdout, /^native addon ready \(libtorch \d+\.\d+/);
  assert.ok(fs.statSync(addonFile()).size > 10_000);
  const again = adafilter(['setup']);
  assert.equal(again.status, 0, show(again));
  assert.match(again.stdout, /native addon ready/);
  assert.doesNotMatch(again.stderr, /building/);
});

test('installed CLI: datasets list, a one-epoch train, bench loads', opts, () => {
  const ds = adafilter(['datasets', 'list', '--json']);
  assert.equal(ds.status, 0, show(ds));
  const names = (JSON.parse(ds.stdout) as { name: string }[]).map((d) => d.name);
  assert.ok(names.some((n) => n.startsWith('quickdraw')) && names.includes('mnist'), names.join());
  const dir = path.join(out, 'run');
  const tr = adafilter(['train', ...TINY, '--method', 'finetune', '--out', dir, '--json']);
  assert.equal(tr.status, 0, show(tr));
  const res = JSON.parse(tr.stdout);
  assert.equal(res.epochs, 1);
  assert.ok(res.test.acc >= 0 && res.test.acc <= 1 && res.test.examples > 0, tr.stdout);
  for (const f of ['run.json', 'log.jsonl', 'model.safetensors', 'result.json']) assert.ok(fs.existsSync(path.join(dir, f)), f);
  const bench = adafilter(['bench', 'throughput', '--help']);
  assert.equal(bench.status, 0, show(bench));
});

test("installed API: require('adafilter') and import { fineTune } from 'adafilter' both run", opts, () => {
  const body = (dir: string) => `fineTune({ ...${TINY_API}, out: ${JSON.stringify(dir)} })
  .then((r) => console.log(JSON.stringify({ acc: r.test.acc, dir: r.dir })));\n`;
  fs.writeFileSync(path.join(app, 'use.cjs'), `const { fineTune } = require('adafilter');\n${body(path.join(out, 'api-cjs'))}`);
  fs.writeFileSync(path.join(app, 'use.mjs'), `import { fineTune } from 'adafilter';\n${body(path.join(out, 'api-esm'))}`);
  const runs = ['use.cjs', 'use.mjs'].map((f) => sh(process.execPath, [f], app));
  for (const r of runs) {
    assert.equal(r.status, 0, show(r));
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.ok(res.acc >= 0 && res.acc <= 1, r.stdout);
    assert.ok(fs.existsSync(path.join(res.dir, 'model.safetensors')));
  }
  // Same seed, same data, same thread count: the two entry points train the same run.
  assert.equal(JSON.parse(runs[0].stdout.trim().split('\n').pop()!).acc, JSON.parse(runs[1].stdout.trim().split('\n').pop()!).acc);
});
