import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseBackboneSpec } from '../../src/train/backbones';

test('one parser reads every backbone spec: shipped names, nsfwjs, architectures, [ARCH:]FILE by format', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adafilter-spec-'));
  try {
    fs.writeFileSync(path.join(dir, 'model.json'), '{}');
    const kinds = (spec: string) => {
      const s = parseBackboneSpec(spec);
      return s.kind === 'file' ? [s.kind, s.file, s.arch, s.format] : s.kind === 'shipped' ? [s.kind, s.shipped.name] : s.kind === 'architecture' ? [s.kind, s.arch] : [s.kind];
    };
    assert.deepEqual(kinds('default'), ['shipped', 'default']);
    assert.deepEqual(kinds('doodles-resnet20'), ['shipped', 'doodles-resnet20']);
    assert.deepEqual(kinds('nsfwjs'), ['nsfwjs']);
    assert.deepEqual(kinds('resnet20'), ['architecture', 'resnet20']);
    assert.deepEqual(kinds('w.safetensors'), ['file', 'w.safetensors', null, 'safetensors']);
    assert.deepEqual(kinds('resnet18:w.safetensors'), ['file', 'w.safetensors', 'resnet18', 'safetensors']);
    assert.deepEqual(kinds('resnet18:/x/w.onnx'), ['file', '/x/w.onnx', 'resnet18', 'onnx']);
    assert.deepEqual(kinds('m.onnx'), ['file', 'm.onnx', null, 'onnx']);
    assert.deepEqual(kinds(dir), ['file', dir, null, 'tfjs'], 'a folder holding model.json');
    assert.deepEqual(kinds(path.join(dir, 'model.json')), ['file', path.join(dir, 'model.json'), null, 'tfjs']);
    // A prefix that is not an architecture stays part of the path (a Windows drive, a URL-like name).
    assert.deepEqual(kinds('C:w.safetensors'), ['file', 'C:w.safetensors', null, 'safetensors']);
    assert.deepEqual(kinds('resnet20:weights.bin'), ['file', 'weights.bin', 'resnet20', null]);
    assert.deepEqual(kinds('nothing-here'), ['file', 'nothing-here', null, null]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
