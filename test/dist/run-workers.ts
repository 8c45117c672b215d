/** Runs a compiled worker of test/dist/workers/ under the launcher: 2 processes × 1 thread on 127.0.0.1. */
import * as path from 'node:path';
import { launch, LaunchOptions } from '../../src/dist';

export function workerScript(name: string): string {
  return path.join(__dirname, 'workers', `${name}.js`);
}

/** Resolves when every worker exits 0; rejects with the launcher's LaunchError otherwise. */
export function runWorkers(name: string, args: string[], o: Partial<LaunchOptions> = {}): Promise<void> {
  return launch({ nprocPerNode: 2, command: process.execPath, args: [workerScript(name), ...args], log: () => {}, ...o });
}
