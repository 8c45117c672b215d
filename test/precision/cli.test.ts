/** --device and --precision refused with one line and exit 2 where they cannot run, before anything is loaded. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SMALL, cli, tmpDir } from '../train/helpers';
import { cudaDevices } from '../../src/engine/device';

function refused(args: string[], reason: RegExp): void {
  const r = cli(...args);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, reason);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
}

test('--device cuda on a machine or build without CUDA: exit 2, one line saying so, no run folder', { skip: cudaDevices() > 0 && 'a GPU is usable here' }, () => {
  const out = path.join(tmpDir('device'), 'run');
  refused(['train', ...SMALL, '--device', 'cuda', '--out', out], /device cuda: this build has no CUDA|device cuda: libtorch has CUDA but this machine has no usable GPU/);
  assert.ok(!fs.existsSync(out), 'nothing written');
  refused(['train', ...SMALL, '--device', 'cuda:1', '--out', out], /device cuda:1: /);
  refused(['eval', 'no-such-run', '--device', 'cuda'], /device cuda: /);
  refused(['predict', 'no-such-run', 'x.png', '--device', 'cuda'], /device cuda: /);
});

test('--precision fp16 on the CPU: exit 2 with the reason (fp16 needs CUDA)', () => {
  const out = path.join(tmpDir('fp16'), 'run');
  refused(['train', ...SMALL, '--precision', 'fp16', '--out', out], /precision fp16: fp16 needs CUDA/);
  refused(['train', ...SMALL, '--precision', 'fp16', '--device', 'cpu', '--out', out], /fp16 needs CUDA/);
  refused(['eval', 'no-such-run', '--precision', 'fp16'], /fp16 needs CUDA/);
  assert.ok(!fs.existsSync(out));
});

test('unknown --device and --precision values: exit 2 naming what is accepted', () => {
  refused(['train', ...SMALL, '--device', 'gpu'], /device: expected cpu, cuda, cuda:N or auto, got 'gpu'/);
  refused(['train', ...SMALL, '--precision', 'fp8'], /precision: expected fp32, bf16, fp16, got 'fp8'/);
  refused(['compare', ...SMALL, '--methods', 'finetune', '--precision', 'half'], /precision: expected fp32, bf16, fp16/);
});
