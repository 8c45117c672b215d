import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import { noGrad } from '../../src/engine/autograd';
import { manualSeed, randn } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { buildModel } from '../../src/models/registry';
import { saveSafetensors } from '../../src/io/safetensors';
import { loadRun } from '../../src/train/load-run';
import { META } from '../../src/train/backbones';

setNumThreads(1);
const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'bin', 'adafilter.js');
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'adafilter-models-'));
process.on('exit', () => fs.rmSync(base, { recursive: true, force: true }));

function cli(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });
}
const TRAIN = ['--data', 'quickdraw:300-302', '--shots', '4', '--epochs', '1', '--input-size', '64', '--threads', '1', '--workers', '0'];

/** The exported graph on onnxruntime against our eval forward of the reloaded run, same input. */
async function onnxMatchesRun(run: string, onnx: string): Promise<number> {
  const loaded = loadRun(run);
  try {
    manualSeed(3);
    const x = randn([3, loaded.config.channels, loaded.config.inputSize, loaded.config.inputSize]);
    const ours = noGrad(() => loaded.model.forward(x)).toFloat32Array();
    const sess = await ort.InferenceSession.create(onnx);
    const res = await sess.run({ input: new ort.Tensor('float32', x.toFloat32Array(), x.shape) });
    const theirs = res.logits.data as Float32Array;
    assert.equal(theirs.length, ours.length);
    let d = 0;
    for (let i = 0; i < ours.length; i++) d = Math.max(d, Math.abs(ours[i] - theirs[i]));
    return d;
  } finally {
    loaded.model.dispose();
  }
}

test('list: every architecture and the pretrained weights (shipped default, nsfwjs)', () => {
  const r = cli('models', 'list', '--json');
  assert.equal(r.status, 0, r.stderr);
  const l = JSON.parse(r.stdout);
  const names = l.architectures.map((a: { name: string }) => a.name);
  for (const n of ['resnet20', 'resnet26', 'resnet50', 'mobilenetv2', 'mobilenetv2-0.35']) assert.ok(names.includes(n), n);
  assert.equal(l.architectures.find((a: { name: string }) => a.name === 'resnet18').params, 11689512);
  const def = l.weights.find((w: { name: string }) => w.name === 'default');
  // The shipped file may not be built yet on this machine: then the entry says how to build it.
  if (def.available) assert.equal(typeof def.card?.arch, 'string');
  else assert.match(def.build, /adafilter pretrain .*--out weights\/default\.safetensors/);
  assert.equal(l.weights.find((w: { name: string }) => w.name === 'nsfwjs').available, true);
  const t = cli('models', 'list');
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /resnet26\s+resnet\s+64 px\s+6\.12 M/);
  assert.match(t.stdout, /^ {2}default\s+/m);
});

test('inspect: an architecture, and a weights file with a model card', () => {
  const r = cli('models', 'inspect', 'resnet20', '--json');
  assert.equal(r.status, 0, r.stderr);
  const i = JSON.parse(r.stdout);
  assert.equal(i.layers.length, 21);
  assert.equal(i.params.backbone, 271824);
  assert.equal(i.input.size, 32);
  const m = buildModel('resnet20', 5);
  const file = path.join(base, 'carded.safetensors');
  const card = { arch: 'resnet20', source: 'quickdraw:0-4', classes: 5, classNames: ['a', 'b', 'c', 'd', 'e'], epochs: 2, seed: 0, trainImages: null,
    valAcc: 0.5, testAcc: 0.25, input: { size: 28, channels: 1, mean: [0.2], std: [0.3] }, command: 'adafilter pretrain …', createdAt: 'now', trainSeconds: 1 };
  saveSafetensors(m, file, { [META.arch]: 'resnet20', [META.input]: JSON.stringify({ size: 28, channels: 3, normalize: { mean: [0.2, 0.2, 0.2], std: [0.3, 0.3, 0.3] } }), [META.card]: JSON.stringify(card) });
  m.dispose();
  const c = cli('models', 'inspect', file);
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, /card\s+resnet20 pretrained on quickdraw:0-4, 5 classes/);
  assert.match(c.stdout, /classifier \(5 classes\)/);
  assert.match(c.stdout, /input\s+28 px/);
});

test('import nsfwjs → train AdaFilter from the file for one epoch → inspect, eval, ONNX export equals our forward', async () => {
  const w = path.join(base, 'nsfw.safetensors');
  const imp = cli('models', 'import', 'nsfwjs', '--out', w, '--json');
  assert.equal(imp.status, 0, imp.stderr);
  const info = JSON.parse(imp.stdout);
  assert.equal(info.reloadMaxDiff, 0, 'the written file rebuilds the same network');
  assert.equal(info.archOptions.padding, 'keras');
  assert.equal(info.archOptions.bnEps, 1e-3);

  const run = path.join(base, 'af');
  const t = cli('train', '--backbone', w, ...TRAIN, '--method', 'adafilter', '--out', run, '--json');
  assert.equal(t.status, 0, t.stderr);
  assert.equal(JSON.parse(t.stdout).epochs, 1);
  const cfg = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
  assert.deepEqual(cfg.archOptions, info.archOptions);
  assert.deepEqual(cfg.input.normalize, { mean: [0, 0, 0], std: [1, 1, 1] });

  const e = cli('eval', run, '--json');
  assert.equal(e.status, 0, e.stderr);
  assert.equal(JSON.parse(e.stdout).acc, JSON.parse(t.stdout).test.acc, 'the reloaded run scores what training reported');

  const ins = cli('models', 'inspect', run, '--json');
  assert.equal(ins.status, 0, ins.stderr);
  const ri = JSON.parse(ins.stdout);
  assert.equal(ri.method, 'adafilter');
  assert.deepEqual(ri.classes, cfg.classes);
  assert.ok(ri.params.frozen > 0);

  const onnx = path.join(base, 'af.onnx');
  const x = cli('models', 'export', run, '--format', 'onnx', '--out', onnx);
  assert.equal(x.status, 0, x.stderr);
  assert.ok((await onnxMatchesRun(run, onnx)) < 1e-4);
});

test('--backbone nsfwjs directly; finetune run exported as ONNX and as a reusable backbone', async () => {
  const run = path.join(base, 'ft');
  const t = cli('train', '--backbone', 'nsfwjs', ...TRAIN, '--method', 'finetune', '--out', run);
  assert.equal(t.status, 0, t.stderr);
  const onnx = path.join(base, 'ft.onnx');
  assert.equal(cli('models', 'export', run, '--format', 'onnx', '--out', onnx).status, 0);
  assert.ok((await onnxMatchesRun(run, onnx)) < 1e-4);
  const st = path.join(base, 'ft.safetensors');
  const s = cli('models', 'export', run, '--format', 'safetensors', '--out', st);
  assert.equal(s.status, 0, s.stderr);
  const i = cli('models', 'inspect', st, '--json');
  assert.equal(i.status, 0, i.stderr);
  const ii = JSON.parse(i.stdout);
  assert.equal(ii.classifier.classes, 3);
  assert.equal(ii.archOptions.padding, 'keras');
  // The exported backbone with its head, as ONNX, agrees with the run's ONNX on the same input size.
  assert.equal(cli('models', 'export', st, '--format', 'onnx', '--out', path.join(base, 'ft2.onnx'), '--input-size', '64').status, 0);
});

test('bad input: one line on stderr, exit code 2', () => {
  fs.writeFileSync(path.join(base, 'junk.onnx'), 'definitely not protobuf');
  fs.writeFileSync(path.join(base, 'junk.safetensors'), 'xx');
  const cases: [string[], RegExp][] = [
    [['models'], /expected a subcommand/],
    [['models', 'frobnicate'], /unknown subcommand 'frobnicate'/],
    [['models', 'inspect', 'resnet99'], /unknown model 'resnet99'/],
    [['models', 'inspect', path.join(base, 'junk.onnx')], /junk\.onnx/],
    [['models', 'inspect', path.join(base, 'junk.safetensors')], /junk\.safetensors/],
    [['models', 'import', 'nsfwjs'], /--out FILE\.safetensors is required/],
    [['models', 'import', 'nsfwjs', '--out', path.join(base, 'x.onnx')], /must end in \.safetensors/],
    [['models', 'import', 'resnet20', '--out', path.join(base, 'x.safetensors')], /random weights/],
    [['models', 'import', path.join(base, 'nope.onnx'), '--out', path.join(base, 'x.safetensors')], /no such ONNX file/],
    [['models', 'export', 'resnet20', '--format', 'tflite', '--out', path.join(base, 'x.onnx')], /--format must be onnx, safetensors or web/],
    [['models', 'export', 'resnet20', '--format', 'onnx', '--out', path.join(base, 'x.onnx')], /no classifier of its own/],
    [['models', 'export', base, '--format', 'onnx', '--out', path.join(base, 'x.onnx')], /unknown model|not a model format/],
    [['models', 'list', '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [args, re] of cases) {
    const r = cli(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.ok(!fs.existsSync(path.join(base, 'x.safetensors')) && !fs.existsSync(path.join(base, 'x.onnx')), 'nothing written for bad input');
});
