import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setNumThreads } from '../../src/engine/runtime';
import { isInputError } from '../../src/errors';
import { importTfjs, nsfwjsMobileNetV2Dir } from '../../src/io/tfjs-import';
import { readTfjsModel } from '../../src/io/tfjs-format';
import { parseJsLiteral } from '../../src/io/js-literal';

setNumThreads(1);

const src = nsfwjsMobileNetV2Dir();
const MODEL = fs.readFileSync(path.join(src, 'model.min.js'), 'latin1');
const SHARD = fs.readFileSync(path.join(src, 'group1-shard1of1.min.js'), 'latin1');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adafilter-tfjs-fuzz-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

/** Imports nsfwjs-style files with the given contents: null on success, else the InputError's message. */
function tryImport(model: string | Buffer, shard: string | Buffer = SHARD): string | null {
  fs.writeFileSync(path.join(dir, 'model.min.js'), model);
  fs.writeFileSync(path.join(dir, 'group1-shard1of1.min.js'), shard);
  try {
    importTfjs(path.join(dir, 'model.min.js'), { numClasses: 2 }).model.dispose();
    return null;
  } catch (e) {
    assert.ok(isInputError(e), `not an InputError: ${(e as Error).stack}`);
    return (e as Error).message;
  }
}

function rejects(model: string | Buffer, shard: string | Buffer, pattern: RegExp): void {
  const msg = tryImport(model, shard);
  assert.ok(msg !== null, `accepted, expected ${pattern}`);
  assert.match(msg!, pattern);
}

const once = (s: string, from: string, to: string): string => {
  assert.ok(s.includes(from), `fixture lacks ${from}`);
  return s.replace(from, to);
};

const payload = () => {
  const begin = SHARD.indexOf('exports="') + 9;
  return { begin, end: SHARD.indexOf('"', begin) };
};

test('the untouched files import', () => {
  assert.equal(tryImport(MODEL), null);
});

test('truncated or corrupt shards name the file and the weight', () => {
  const { begin, end } = payload();
  const cut = SHARD.slice(0, end - 4000) + SHARD.slice(end);
  rejects(MODEL, cut, /model\.min\.js: weight group 0 \("group1-shard1of1"\) has \d+ bytes in its shards but its weights need \d+ \(weight "[^"]+" is cut off\)/);
  rejects(MODEL, SHARD.slice(0, SHARD.length / 2), /group1-shard1of1\.min\.js: .*unterminated string/);
  rejects(MODEL, SHARD.slice(0, begin + 10) + '!' + SHARD.slice(begin + 11), /not valid base64/);
  rejects(MODEL, SHARD.slice(0, begin + 10) + '"' + SHARD.slice(begin + 11), /unexpected code after the exported literal/);
  rejects(MODEL, SHARD.slice(0, begin) + 'AAAA' + SHARD.slice(begin), /holds more bytes than its \d+ weights need/);
  rejects(MODEL, Buffer.alloc(0), /not a wrapped TF\.js model module/);
  fs.rmSync(path.join(dir, 'group1-shard1of1.min.js'));
  assert.throws(() => readTfjsModel(path.join(dir, 'model.min.js')), (e) => isInputError(e) && /group1-shard1of1\.min\.js: cannot read/.test((e as Error).message));
});

test('shapes that do not fit the data or the architecture', () => {
  // Same byte count, wrong layout: the format accepts it, the architecture check names the weight.
  rejects(once(MODEL, 'name:"Conv1/kernel",shape:[3,3,3,32]', 'name:"Conv1/kernel",shape:[3,3,6,16]'), SHARD,
    /model\.min\.js: .*Conv1.*(kernel|filters)/);
  rejects(once(MODEL, 'name:"Conv_1_bn/gamma",shape:[1280]', 'name:"Conv_1_bn/gamma",shape:[640,2]'), SHARD, /weight "Conv_1_bn\/gamma" has shape \[640,2\], the backbone needs \[1280\]/);
  rejects(once(MODEL, 'name:"Conv1/kernel",shape:[3,3,3,32]', 'name:"Conv1/kernel",shape:[3,3,3,33]'), SHARD, /weight group 0 \("group1-shard1of1"\) has \d+ bytes in its shards but its weights need \d+/);
  rejects(once(MODEL, 'name:"Conv1/kernel",shape:[3,3,3,32]', 'name:"Conv1/kernel",shape:[3,3,-3,32]'), SHARD, /weight "Conv1\/kernel"\): shape must be a list/);
  rejects(once(MODEL, 'name:"Conv1/kernel",shape:[3,3,3,32]', 'name:"Conv1/kernel",shape:[3,3,3,32,1,1,1,1,1]'), SHARD, /at most 8/);
  rejects(once(MODEL, 'name:"Conv1/kernel",shape:[3,3,3,32]', 'name:"Conv1/kernel",shape:[3,3,1.5,32]'), SHARD, /shape must be a list/);
  // Architecture: a residual add renamed away, a stride changed, a ReLU uncapped.
  rejects(MODEL.split('"block_2_add"').join('"block_2_plus"'), SHARD, /block "block_2" lacks the residual add "block_2_add"/);
  rejects(once(MODEL, 'name:"block_1_depthwise",trainable:!1,kernel_size:[3,3],strides:[2,2]', 'name:"block_1_depthwise",trainable:!1,kernel_size:[3,3],strides:[1,1]'),
    SHARD, /layer "block_1_depthwise" is 3×3 stride 1/);
  rejects(once(MODEL, 'name:"out_relu",trainable:!0,max_value:6', 'name:"out_relu",trainable:!0,max_value:7'), SHARD, /layer "out_relu" is not a ReLU\(max 6\)/);
  rejects(once(MODEL, 'padding:[[0,1],[0,1]]', 'padding:[[1,1],[1,1]]'), SHARD, /layer "Conv1" pads \[1,1,1,1\]/);
});

test('huge declared sizes fail before anything is allocated', { timeout: 120_000 }, () => {
  const rss = process.memoryUsage().rss;
  rejects(once(MODEL, 'name:"Conv1/kernel",shape:[3,3,3,32]', 'name:"Conv1/kernel",shape:[100000,100000,100000,32]'), SHARD, /declares more than \d+ elements/);
  rejects(once(MODEL, 'name:"Conv1/kernel",shape:[3,3,3,32]', 'name:"Conv1/kernel",shape:[65536,8192]'), SHARD, /weight group 0 \("group1-shard1of1"\) has \d+ bytes in its shards but its weights need \d+/);
  rejects(once(MODEL, 'name:"Conv1/kernel",shape:[3,3,3,32]', 'name:"Conv1/kernel",shape:[1e300]'), SHARD, /shape must be a list/);
  rejects(MODEL.replace(/shape:\[(\d+)\]/g, 'shape:[$1,4096,64]'), SHARD, /more than \d+ bytes of weights/);
  assert.ok(process.memoryUsage().rss - rss < 200e6, 'memory grew');
});

test('wrong dtypes, paths and embedded code are refused', () => {
  rejects(once(MODEL, 'name:"Conv1/kernel",shape:[3,3,3,32],dtype:"float32"', 'name:"Conv1/kernel",shape:[3,3,3,32],dtype:"string"'), SHARD, /weight "Conv1\/kernel"\): dtype "string" is not supported/);
  rejects(once(MODEL, 'scale:.006666756611244351,dtype:"uint8"', 'scale:.006666756611244351,dtype:"int8"'), SHARD, /weight "Conv1\/kernel"\): quantization dtype "int8" is not supported/);
  rejects(once(MODEL, 'quantization:{min:-.87334511607301,', 'quantization:{min:"x",'), SHARD, /needs finite numbers min and scale/);
  rejects(once(MODEL, 'paths:["group1-shard1of1"]', 'paths:["../../../../etc/passwd"]'), SHARD, /must be a plain relative path/);
  rejects(once(MODEL, 'paths:["group1-shard1of1"]', 'paths:["/etc/passwd"]'), SHARD, /must be a plain relative path/);
  rejects(once(MODEL, 'paths:["group1-shard1of1"]', 'paths:[]'), SHARD, /bytes of weights but no shard paths/);
  rejects(once(MODEL, 'a.exports={modelTopology:', 'a.exports=require("child_process").execSync("x"),{modelTopology:'), SHARD, /not a data literal/);
  rejects(once(MODEL, 'a.exports={modelTopology:', 'a.exports={get modelTopology(){return 1},x:'), SHARD, /not a data literal/);
  rejects(once(MODEL, 'keras_version:"2.2.4"', 'keras_version:`2.2.4`'), SHARD, /not a data literal/);
  rejects(once(MODEL, 'class_name:"Model"', 'class_name:"GraphModel"'), SHARD, /model class "GraphModel" is not supported/);
  rejects(MODEL.split('"Conv1"').join('"ConvA"').split('Conv1/').join('ConvA/'), SHARD, /not a recognised architecture/);
  rejects(Buffer.from([0xff, 0xfe, 0x00]), SHARD, /not valid UTF-8/);
});

test('model.json: strict JSON, format and manifest checks', () => {
  const write = (model: string, bin: Buffer = Buffer.alloc(0)) => {
    fs.writeFileSync(path.join(dir, 'model.json'), model);
    fs.writeFileSync(path.join(dir, 'w.bin'), bin);
    try {
      readTfjsModel(path.join(dir, 'model.json'));
      return null;
    } catch (e) {
      assert.ok(isInputError(e), `not an InputError: ${(e as Error).stack}`);
      return (e as Error).message;
    } finally {
      fs.rmSync(path.join(dir, 'model.json'));
    }
  };
  const topo = { class_name: 'Model', config: { layers: [] } };
  const m = (weights: unknown[], extra: object = {}) => JSON.stringify({ modelTopology: topo, weightsManifest: [{ paths: ['w.bin'], weights }], ...extra });
  assert.equal(write(m([{ name: 'a', shape: [2], dtype: 'float32' }]), Buffer.alloc(8)), null);
  assert.match(write('{"modelTopology": {}, "modelTopology": {}}')!, /model\.json: invalid JSON: duplicate key/);
  assert.match(write('[1,2]')!, /the model is not an object/);
  assert.match(write(m([], { format: 'graph-model' }))!, /not a TF\.js LayersModel/);
  assert.match(write(JSON.stringify({ modelTopology: topo }))!, /weightsManifest missing/);
  assert.match(write(m([{ name: 'a', shape: [2], dtype: 'bool' }]), Buffer.from([1, 2]))!, /weight "a" is bool but holds byte 2/);
  assert.match(write(m([{ name: 'a', shape: [2] }, { name: 'a', shape: [2] }]), Buffer.alloc(16))!, /weight "a" appears twice/);
  assert.match(write(m([{ name: 'a', shape: [2], dtype: 'float32' }]), Buffer.alloc(9))!, /w\.bin: 9 bytes, more than the 8/);
  assert.match(write(m([{ name: 'a', shape: [2], quantization: { dtype: 'uint8', min: 0, scale: Infinity } }]), Buffer.alloc(2))!,
    /needs finite numbers min and scale/);
});

/** mulberry32 */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('random bit flips in the model module and the shard: an InputError or a model, never a crash', () => {
  const r = rng(11);
  const model = Buffer.from(MODEL, 'latin1');
  const body = MODEL.indexOf('a.exports=');
  let accepted = 0;
  for (let k = 0; k < 12; k++) {
    const b = Buffer.from(model);
    const at = body + Math.floor(r() * (b.length - body));
    b[at] ^= 1 << Math.floor(r() * 8);
    if (tryImport(b) === null) accepted++;
  }
  const shard = Buffer.from(SHARD, 'latin1');
  const { begin, end } = payload();
  for (let k = 0; k < 6; k++) {
    const b = Buffer.from(shard);
    b[begin + Math.floor(r() * (end - begin))] ^= 1 << Math.floor(r() * 8);
    if (tryImport(MODEL, b) === null) accepted++;
  }
  console.log(`bit flips: ${accepted} of 18 still imported (weights or names changed harmlessly)`);
});

test('the literal parser refuses code and keeps __proto__ an ordinary key', () => {
  const v = parseJsLiteral('{__proto__:{a:!0},"b":[.5,-1e-3,void 0,\'x\\u0041\']}').value as Map<string, unknown>;
  assert.ok(v instanceof Map && v.get('__proto__') instanceof Map);
  assert.deepEqual(v.get('b'), [0.5, -0.001, null, 'xA']);
  for (const bad of ['{a:b}', '{a:1+1}', '{a:f()}', '[1,,2]', '{a:`x`}', '{a:/x/}', '{a:1}{', '{"a":1,"a":2}', '['.repeat(40)]) {
    const r = (() => { try { const p = parseJsLiteral(bad); return p.end === bad.length ? 'accepted' : 'partial'; } catch { return 'error'; } })();
    assert.notEqual(r, 'accepted', bad);
  }
});
