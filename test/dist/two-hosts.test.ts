/**
 * Two "hosts": two network namespaces made here, joined by a veth pair, one launcher in each
 * (--nnodes 2, --node-rank 0/1, one worker each), Gloo bound to the pair by interface name
 * (--dist-iface). The only addresses are the namespaces' own (10.231.18.1 and .2) and loopback.
 * The float64 CNN must end with exactly the weights of the same training on 127.0.0.1.
 * Skipped, saying why, where namespaces cannot be made (no root, no CAP_SYS_ADMIN, no `ip`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers/tmp';
import { runWorkers, workerScript } from './run-workers';

const LAUNCH_JS = path.resolve(__dirname, '..', '..', 'src', 'dist', 'launch.js');
const NS = [`adafilter-h0-${process.pid}`, `adafilter-h1-${process.pid}`];
const ADDR = ['10.231.18.1', '10.231.18.2'];
const IFACE = 'dist0';

function ip(...args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.stderr || r.error?.message || '').trim() };
}

/** Makes the namespaces and the link; a reason when it cannot (then nothing is left behind). */
function makeHosts(): string | null {
  const veth = [`af0-${process.pid % 100000}`, `af1-${process.pid % 100000}`];
  const steps: string[][] = [
    ['netns', 'add', NS[0]], ['netns', 'add', NS[1]],
    ['link', 'add', veth[0], 'type', 'veth', 'peer', 'name', veth[1]],
    ['link', 'set', veth[0], 'netns', NS[0]], ['link', 'set', veth[1], 'netns', NS[1]],
  ];
  for (let h = 0; h < 2; h++) {
    steps.push(['-n', NS[h], 'link', 'set', veth[h], 'name', IFACE], ['-n', NS[h], 'addr', 'add', `${ADDR[h]}/30`, 'dev', IFACE],
      ['-n', NS[h], 'link', 'set', IFACE, 'up'], ['-n', NS[h], 'link', 'set', 'lo', 'up']);
  }
  for (const s of steps) {
    const r = ip(...s);
    if (!r.ok) {
      removeHosts();
      ip('link', 'delete', veth[0]);
      return `cannot make network namespaces here (ip ${s.join(' ')}: ${r.err})`;
    }
  }
  return null;
}

function removeHosts(): void {
  for (const ns of NS) ip('netns', 'delete', ns); // deleting a namespace deletes its end of the pair, and with it the other
}

const cannot = process.platform !== 'linux' ? 'network namespaces are Linux only' : makeHosts();
process.on('exit', removeHosts);

function inHost(h: number, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', NS[h], process.execPath, LAUNCH_JS, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

test('2 hosts over a veth pair with --dist-iface: the weights of the loopback run, bit for bit', { timeout: 180_000, skip: cannot ?? false }, async () => {
  const [hosts, loopback] = [tmpDir('dist-2hosts'), tmpDir('dist-2hosts-loopback')];
  const runs = await Promise.all([0, 1].map((h) => inHost(h, [
    '--nnodes', '2', '--node-rank', String(h), '--nproc-per-node', '1', '--master-addr', ADDR[0], '--master-port', '29500', '--',
    process.execPath, workerScript('ddp-worker'), hosts, 'plain', IFACE,
  ])));
  runs.forEach((r, h) => assert.equal(r.code, 0, `host ${h}:\n${r.stderr}`));
  await runWorkers('ddp-worker', [loopback, 'plain']);
  const read = (dir: string, r: number): { final: Record<string, number[]> } => JSON.parse(fs.readFileSync(path.join(dir, `rank${r}.json`), 'utf8'));
  for (const r of [0, 1]) assert.deepEqual(read(hosts, r).final, read(loopback, r).final, `rank ${r}`);
});
