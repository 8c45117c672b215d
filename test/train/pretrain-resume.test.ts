import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, cliUntil, exited, logLines, tmpDir } from './helpers';
import { decodeSafetensors } from '../../src/io/safetensors';

// A composed source as the shipped default is made from, small enough for seconds per epoch.
const SOURCE = 'quickdraw:0-3+glyphs:scripts=Runic;max=4;samples=10;size=28';
const args = (base: string, name: string) => ['pretrain', '--arch', 'resnet20', '--data', SOURCE, '--epochs', '3', '--batch', '8', '--lr', '0.05',
  '--threads', '1', '--workers', '0', '--seed', '0', '--out', path.join(base, `${name}.safetensors`), '--run', path.join(base, `run-${name}`)];

/** The weights themselves: names and bytes of every tensor (the metadata carries a creation time). */
function tensorsOf(file: string): Map<string, Buffer> {
  const { tensors } = decodeSafetensors(fs.readFileSync(file), file);
  const out = new Map<string, Buffer>();
  for (const [k, t] of tensors) { out.set(k, Buffer.from(t.toFloat32Array().buffer)); t.dispose(); }
  return out;
}

test('pretrain killed with SIGKILL and resumed writes the same weights as an uninterrupted run', async () => {
  const base = tmpDir('pretrain-kill');
  const r0 = cli(...args(base, 'whole'));
  assert.equal(r0.status, 0, r0.stderr);
  const child = await cliUntil(args(base, 'killed'), () => logLines(path.join(base, 'run-killed')) >= 1);
  child.kill('SIGKILL');
  await exited(child);
  assert.ok(!fs.existsSync(path.join(base, 'killed.safetensors')), 'killed before the end: no weights file');
  const r1 = cli(...args(base, 'killed'), '--resume');
  assert.equal(r1.status, 0, r1.stderr);
  assert.match(r1.stderr, /resumed at epoch/);
  const a = tensorsOf(path.join(base, 'whole.safetensors')), b = tensorsOf(path.join(base, 'killed.safetensors'));
  assert.deepEqual([...b.keys()], [...a.keys()]);
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} is bit-identical`);
  // The model card records the composed source's classes and both licences.
  const card = fs.readFileSync(path.join(base, 'killed.md'), 'utf8');
  assert.match(card, /quickdraw:0-3\+glyphs/);
  assert.match(card, /CC BY 4\.0/);
  assert.match(card, /OFL/);
  assert.doesNotMatch(card, /--resume/);
});
