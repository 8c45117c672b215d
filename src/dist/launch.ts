import { spawn, ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { InputError } from '../errors';

/** What to start on this node, with torchrun's flags. */
export interface LaunchOptions {
  /** Workers on this node. */
  nprocPerNode: number;
  nnodes?: number;
  nodeRank?: number;
  /** Rank 0's host, where the rendezvous store listens; 127.0.0.1 by default. */
  masterAddr?: string;
  /** The store's port; on one node a free one by default, else torchrun's 29500. */
  masterPort?: number;
  /** Intra-op threads of each worker (OMP_NUM_THREADS); 1, as torchrun. */
  threadsPerWorker?: number;
  /** How long a worker may take to exit after SIGTERM before it is killed. */
  graceMs?: number;
  command: string;
  args: string[];
  /** The workers' environment before the launcher's variables; this process's by default. */
  env?: NodeJS.ProcessEnv;
  /** Where the launcher's own messages go (the workers' output goes to this process's). */
  log?: (line: string) => void;
  /**
   * 'pass': a first SIGINT is left to the workers, which a terminal's Ctrl-C reaches too (the CLI's
   * workers then stop together after a step, checkpoint saved); a second stops them. 'stop' (default): SIGTERM at once.
   */
  sigint?: 'stop' | 'pass';
}

/** One worker that did not exit cleanly on its own. */
export interface WorkerFailure {
  rank: number;
  localRank: number;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last error line the worker wrote to stderr, if any. */
  error: string | null;
}

/** A worker failed; the message names the rank that failed first and its error. */
export class LaunchError extends Error {
  override name = 'LaunchError';
  constructor(message: string, readonly failures: WorkerFailure[]) {
    super(message);
  }
}

export const DEFAULT_GRACE_MS = 10_000;
const DEFAULT_PORT = 29500;
// A worker that dies by a signal nobody in the job sent (OOM killer, kill -9) is the likelier cause
// of a peer's failed collective than the other way round; their exits, seen this close together,
// are ordered that way rather than by when the launcher happened to notice them.
const SAME_MOMENT_MS = 500;
const TAIL_LINES = 40;

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function positiveInt(v: number | undefined, what: string, fallback: number, min = 1): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < min) throw new InputError(`${what} must be an integer >= ${min}, got ${v}`);
  return v;
}

/** The line of a worker's stderr that says what went wrong: its last error line, else its last line. */
function errorLine(tail: string[]): string | null {
  const lines = tail.map((l) => l.trim()).filter((l) => l && !/^at /.test(l) && !/^Node\.js v\d/.test(l) && l !== '^');
  for (let i = lines.length - 1; i >= 0; i--) if (/\b\w*Error\b|^error\b/i.test(lines[i])) return lines[i];
  return lines.length ? lines[lines.length - 1] : null;
}

function describeFailure(f: WorkerFailure): string {
  const who = `rank ${f.rank} (local rank ${f.localRank}, pid ${f.pid ?? '?'})`;
  const how = f.signal ? `was killed by ${f.signal}` : `exited with code ${f.code}`;
  return `${who} ${how}${f.error ? `: ${f.error}` : ''}`;
}

interface Worker {
  rank: number;
  localRank: number;
  child: ChildProcess;
  tail: string[];
  exited: boolean;
  signalledByLauncher: boolean;
}

/**
 * Starts nprocPerNode copies of command with torchrun's environment (RANK, WORLD_SIZE,
 * LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, GROUP_RANK, OMP_NUM_THREADS) and waits
 * for them. When one fails, the others get SIGTERM (and SIGCONT, so a stopped one can act on it),
 * then SIGKILL after the grace period; the promise rejects with a LaunchError naming the rank that
 * failed first. SIGINT or SIGTERM to the launcher is passed on the same way.
 */
export async function launch(o: LaunchOptions): Promise<void> {
  const nproc = positiveInt(o.nprocPerNode, '--nproc-per-node', 1);
  const nnodes = positiveInt(o.nnodes, '--nnodes', 1);
  const nodeRank = positiveInt(o.nodeRank, '--node-rank', 0, 0);
  if (nodeRank >= nnodes) throw new InputError(`--node-rank ${nodeRank} must be below --nnodes ${nnodes}`);
  const threads = positiveInt(o.threadsPerWorker, 'threads per worker', 1);
  const graceMs = positiveInt(o.graceMs, 'grace period', DEFAULT_GRACE_MS, 0);
  const masterAddr = o.masterAddr ?? '127.0.0.1';
  const masterPort = o.masterPort !== undefined
    ? positiveInt(o.masterPort, '--master-port', DEFAULT_PORT)
    : nnodes === 1 ? await freePort(masterAddr) : DEFAULT_PORT;
  if (masterPort > 65535) throw new InputError(`--master-port must be at most 65535, got ${masterPort}`);
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const worldSize = nnodes * nproc;

  const workers: Worker[] = [];
  const failures: { failure: WorkerFailure; at: number }[] = [];
  let stopping = false;
  let killTimer: NodeJS.Timeout | undefined;

  const stopAll = (why: string): void => {
    if (stopping) return;
    stopping = true;
    const running = workers.filter((w) => !w.exited);
    if (running.length) log(`launch: ${why}; stopping ${running.map((w) => `rank ${w.rank}`).join(', ')}`);
    for (const w of running) {
      w.signalledByLauncher = true;
      w.child.kill('SIGTERM');
      w.child.kill('SIGCONT');
    }
    killTimer = setTimeout(() => {
      for (const w of workers) if (!w.exited) w.child.kill('SIGKILL');
    }, graceMs);
  };
  let sigints = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signal === 'SIGINT' && o.sigint === 'pass' && sigints++ === 0) {
      log('launch: Ctrl-C: the workers stop after their current step (Ctrl-C again to stop them now)');
      return;
    }
    stopAll(`received ${signal}`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    await new Promise<void>((resolve) => {
      let left = nproc;
      for (let localRank = 0; localRank < nproc; localRank++) {
        const rank = nodeRank * nproc + localRank;
        const env: NodeJS.ProcessEnv = {
          ...(o.env ?? process.env),
          RANK: String(rank), WORLD_SIZE: String(worldSize), LOCAL_RANK: String(localRank), LOCAL_WORLD_SIZE: String(nproc),
          GROUP_RANK: String(nodeRank), MASTER_ADDR: masterAddr, MASTER_PORT: String(masterPort), OMP_NUM_THREADS: String(threads),
        };
        const child = spawn(o.command, o.args, { env, stdio: ['ignore', 'inherit', 'pipe'] });
        const w: Worker = { rank, localRank, child, tail: [], exited: false, signalledByLauncher: false };
        workers.push(w);
        let partial = '';
        child.stderr?.on('data', (chunk: Buffer) => {
          process.stderr.write(chunk);
          const lines = (partial + chunk.toString('utf8')).split('\n');
          partial = lines.pop() ?? '';
          w.tail.push(...lines);
          if (w.tail.length > TAIL_LINES) w.tail.splice(0, w.tail.length - TAIL_LINES);
        });
        let spawnError: string | null = null;
        child.on('error', (e) => { spawnError = `cannot start ${o.command}: ${e.message}`; });
        // 'close' comes after stderr has ended, so the tail holds the worker's last words.
        child.on('close', (code, signal) => {
          if (partial) w.tail.push(partial);
          w.exited = true;
          const clean = code === 0 && !signal;
          // A worker ended by the launcher's own SIGTERM (by the signal, or by exiting 128 + 15 from
          // a handler) is not a failure; one that exits with another code still reports its error.
          const stoppedByUs = w.signalledByLauncher && (signal !== null || code === 143);
          if (!clean && !stoppedByUs) {
            const failure = { rank, localRank, pid: child.pid, code, signal, error: spawnError ?? errorLine(w.tail) };
            failures.push({ failure, at: Date.now() });
            stopAll(`${describeFailure(failure)}`);
          }
          if (--left === 0) resolve();
        });
      }
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (killTimer) clearTimeout(killTimer);
  }

  if (failures.length === 0) {
    if (stopping) throw new LaunchError('stopped by a signal before the workers finished', []);
    return;
  }
  const first = failures[0];
  const bySignal = failures.find((f) => f.failure.signal && f.at - first.at <= SAME_MOMENT_MS);
  const root = bySignal ?? first;
  const others = failures.filter((f) => f !== root).map((f) => describeFailure(f.failure));
  throw new LaunchError(`${describeFailure(root.failure)}${others.length ? `; then ${others.join('; ')}` : ''}`,
    [root, ...failures.filter((f) => f !== root)].map((f) => f.failure));
}

/** launch() for a command line: returns the exit code, 0 when every worker succeeded, 1 otherwise (the message on stderr). */
export async function runLaunch(o: LaunchOptions): Promise<number> {
  try {
    await launch(o);
    return 0;
  } catch (e) {
    if (e instanceof LaunchError) {
      process.stderr.write(`launch: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

const USAGE = 'usage: launch --nproc-per-node N [--nnodes M --node-rank R] [--master-addr H] [--master-port P] '
  + '[--threads T] [--grace S] -- COMMAND [ARGS...]';

/** Parses torchrun-style flags up to `--`; the rest is the worker command. */
export function parseLaunchArgs(argv: string[]): LaunchOptions {
  const sep = argv.indexOf('--');
  if (sep < 0 || sep === argv.length - 1) throw new InputError(USAGE);
  const flags = argv.slice(0, sep);
  const num = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !/^\d+(\.\d+)?$/.test(v)) throw new InputError(`${name}: expected a number, got ${v ?? 'nothing'}`);
    return n;
  };
  const o: LaunchOptions = { nprocPerNode: 0, command: argv[sep + 1], args: argv.slice(sep + 2) };
  for (let i = 0; i < flags.length; i += 2) {
    const [name, v] = [flags[i], flags[i + 1]];
    switch (name) {
      case '--nproc-per-node': o.nprocPerNode = num(name, v); break;
      case '--nnodes': o.nnodes = num(name, v); break;
      case '--node-rank': o.nodeRank = num(name, v); break;
      case '--master-addr': if (!v) throw new InputError(`${name}: expected a host`); o.masterAddr = v; break;
      case '--master-port': o.masterPort = num(name, v); break;
      case '--threads': o.threadsPerWorker = num(name, v); break;
      case '--grace': o.graceMs = Math.round(num(name, v) * 1000); break;
      default: throw new InputError(`unknown flag ${name}; ${USAGE}`);
    }
  }
  if (!o.nprocPerNode) throw new InputError(`--nproc-per-node is required; ${USAGE}`);
  return o;
}

// `node dist/src/dist/launch.js --nproc-per-node 2 -- node worker.js`: torchrun --no_python's role.
if (require.main === module) {
  (async () => {
    try {
      process.exitCode = await runLaunch(parseLaunchArgs(process.argv.slice(2)));
    } catch (e) {
      process.stderr.write(`launch: ${(e as Error).message}\n`);
      process.exitCode = e instanceof InputError ? 2 : 1;
    }
  })();
}
