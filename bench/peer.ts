import { spawn, ChildProcessWithoutNullStreams } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';

/** Debian's python3 has torch; a python3 earlier on PATH (pyenv, venv) may not. */
export function peerPython(): string {
  return process.env.ADAFILTER_PYTHON ?? '/usr/bin/python3';
}

/**
 * The PyTorch side of a benchmark: a long-lived child process driven by JSON lines, so the two
 * contenders alternate in one run and each waits idle while the other is timed.
 */
export class Peer {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterableIterator<string>;
  private stderr = '';

  constructor(script: string) {
    this.child = spawn(peerPython(), [path.resolve(__dirname, '..', '..', 'bench', 'peer', script)], { stdio: 'pipe' });
    this.child.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    this.lines = readline.createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async request(msg: Record<string, unknown>): Promise<any> {
    this.child.stdin.write(JSON.stringify(msg) + '\n');
    const next = await this.lines.next();
    if (next.done) throw new Error(`PyTorch peer exited: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    const reply = JSON.parse(next.value);
    if (!reply.ok) throw new Error(`PyTorch peer: ${reply.error}`);
    return reply;
  }

  async close(): Promise<void> {
    try {
      await this.request({ cmd: 'quit' }).catch(() => undefined);
    } finally {
      this.child.kill();
    }
  }
}
