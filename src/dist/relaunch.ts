import { launch, LaunchError } from './launch';

/** The launcher's own flags: the workers run the same command line without them. */
export const LAUNCHER_FLAGS = ['nproc-per-node', 'nnodes', 'node-rank', 'master-addr', 'master-port'] as const;

export interface RelaunchOptions {
  nprocPerNode: number;
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  masterPort?: number;
}

/** argv without the launcher's flags (`--flag V` and `--flag=V`), everything else as given. */
export function workerArgs(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { out.push(...argv.slice(i)); break; }
    const name = a.startsWith('--') ? a.slice(2).split('=')[0] : null;
    if (name !== null && (LAUNCHER_FLAGS as readonly string[]).includes(name)) {
      if (!a.includes('=')) i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/**
 * The CLI as torchrun: starts nprocPerNode copies of this CLI's `command argv` (launcher flags
 * removed) with torchrun's environment and waits for them. Returns the exit code: 0 when every
 * worker finished; 130 when every one stopped on Ctrl-C with its checkpoint saved; 2 when the
 * first failure was a worker's bad-input exit; 1 otherwise, the failed rank and its error on stderr.
 */
export async function relaunch(o: RelaunchOptions, command: string, argv: string[]): Promise<number> {
  try {
    await launch({
      ...o, sigint: 'pass', command: process.execPath, args: [...process.execArgv, process.argv[1], command, ...workerArgs(argv)],
    });
    return 0;
  } catch (e) {
    if (!(e instanceof LaunchError)) throw e;
    const f = e.failures;
    if (f.length && f.every((w) => w.code === 130)) {
      process.stderr.write('launch: every rank stopped at the same step; its checkpoint is saved (continue with --resume)\n');
      return 130;
    }
    process.stderr.write(`launch: ${e.message}\n`);
    return f[0]?.code === 2 ? 2 : 1;
  }
}
