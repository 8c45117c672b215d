import * as path from 'node:path';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { spawnSync } from 'node:child_process';
import { Tensor } from '../../src/engine/tensor';
import { noGrad } from '../../src/engine/autograd';

export const FIXTURES = path.join(__dirname, '../../../test/fixtures/models');
export const MAKE_MODELS = path.join(__dirname, '../../../test/reference/make_models.py');
export const PYTHON = '/usr/bin/python3';

let torchOk: boolean | null = null;
/** Whether Debian's python3 with torch and torchvision is there (the reference side). */
export function hasTorch(): boolean {
  if (torchOk === null) {
    torchOk = fs.existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status === 0;
  }
  return torchOk;
}

/** Runs make_models.py with arguments; throws with its stderr on failure. */
export function makeModels(args: string[]): void {
  const r = spawnSync(PYTHON, [MAKE_MODELS, ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`make_models.py ${args.join(' ')} failed: ${r.stderr || r.error}`);
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function maxAbsDiff(a: Tensor, b: Tensor): number {
  return noGrad(() => {
    const d = a.sub(b).abs().max();
    try { return d.item(); } finally { d.dispose(); }
  });
}

export function maxAbs(a: Tensor): number {
  return noGrad(() => {
    const d = a.abs().max();
    try { return d.item(); } finally { d.dispose(); }
  });
}
