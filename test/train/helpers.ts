/** Shared by the training tests: a small real dataset, the CLI as a child process, temp folders. */
import { tmpDir as makeTmpDir } from '../helpers/tmp';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync, SpawnSyncReturns } from 'node:child_process';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const CLI = path.join(ROOT, 'bin', 'adafilter.js');

/** Three unseen Quick Draw classes, 6 training images each: real data, seconds per epoch. */
export const SMALL = ['--backbone', 'resnet20', '--data', 'quickdraw:300-302', '--shots', '6', '--batch', '8', '--threads', '1', '--workers', '0'];
export const SMALL_API = { backbone: 'resnet20', data: 'quickdraw:300-302', shots: 6, batch: 8, threads: 1, workers: 0 };

/** A fresh temporary folder, removed when the test process exits. */
export const tmpDir = (tag: string): string => makeTmpDir(`adafilter-train-${tag}`);

export function cli(...args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });
}

/** Starts the CLI and resolves once `ready(dir)` holds; returns the child for the test to signal. */
export function cliUntil(args: string[], ready: () => boolean, timeoutMs = 120_000): Promise<ReturnType<typeof spawn>> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const poll = setInterval(() => {
      if (ready()) { clearInterval(poll); resolve(child); }
      else if (child.exitCode !== null || Date.now() - t0 > timeoutMs) {
        clearInterval(poll);
        child.kill('SIGKILL');
        reject(new Error(`child ended or timed out before ready (code ${child.exitCode}): ${err}`));
      }
    }, 20);
  });
}

export function exited(child: ReturnType<typeof spawn>): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.on('exit', (code) => resolve(code));
  });
}

export function logLines(dir: string): number {
  const f = path.join(dir, 'log.jsonl');
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).length : 0;
}

/** Leftover temporary files anywhere under dir (an atomic write that did not clean up). */
export function tempFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.tmp'));
}
