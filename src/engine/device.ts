/**
 * Where a run's tensors live: 'cpu' or 'cuda:N', chosen with cpu | cuda | cuda:N | auto and checked
 * against the libtorch the addon was built with, before anything is loaded.
 */
import * as fs from 'node:fs';
import { InputError } from '../errors';
import { native } from './native';
import type { Tensor } from './tensor';

export type DeviceChoice = string;

export const DEVICE_CHOICES = 'cpu, cuda, cuda:N or auto';

/** CUDA devices libtorch can use here: 0 when it was built without CUDA or no GPU is visible. */
export function cudaDevices(): number {
  return native.cudaBuilt() ? native.cudaDeviceCount() : 0;
}

/**
 * The device a choice names, as libtorch spells it ('cpu', 'cuda:0'); auto is CUDA when a GPU is
 * usable, else the CPU. One InputError line when the choice cannot run here, saying why.
 */
export function resolveDevice(choice: DeviceChoice, label = 'device'): string {
  if (choice === 'cpu') return 'cpu';
  if (choice === 'auto') return cudaDevices() > 0 ? 'cuda:0' : 'cpu';
  const m = /^cuda(?::(\d+))?$/.exec(choice);
  if (!m) throw new InputError(`${label}: expected ${DEVICE_CHOICES}, got '${choice}'`);
  if (!native.cudaBuilt()) {
    throw new InputError(`${label} ${choice}: this build has no CUDA (the addon is linked against a CPU-only libtorch ${native.version()}); rebuild it against a CUDA libtorch (LIBTORCH, see README) or use --device cpu`);
  }
  const count = native.cudaDeviceCount();
  if (count === 0) throw new InputError(`${label} ${choice}: libtorch has CUDA but this machine has no usable GPU (no CUDA device visible); use --device cpu`);
  const index = m[1] === undefined ? 0 : Number(m[1]);
  if (index >= count) throw new InputError(`${label} ${choice}: there ${count === 1 ? 'is 1 CUDA device (cuda:0)' : `are ${count} CUDA devices (cuda:0..cuda:${count - 1})`}`);
  return `cuda:${index}`;
}

/** 'cpu' or 'cuda' for a resolved device ('cuda:1' → 'cuda'): what autocast and pinned memory key on. */
export function deviceType(device: string): 'cpu' | 'cuda' {
  return device.startsWith('cuda') ? 'cuda' : 'cpu';
}

/**
 * A host tensor on `device`, taking ownership of it: itself on the CPU; on CUDA copied through pinned
 * memory without waiting (the copy is ordered on the stream before the kernels that read it), the
 * host copies freed.
 */
export function onDevice(t: Tensor, device: string): Tensor {
  if (deviceType(device) === 'cpu') return t;
  const pinned = t.pinMemory();
  t.dispose();
  const moved = pinned.to(device, { nonBlocking: true });
  pinned.dispose();
  return moved;
}

/** What the CPU offers bf16 autocast: Linux's name of its bf16 instructions, 'none', or 'unknown' (no x86 flags to read). */
export type CpuBf16 = 'amx_bf16' | 'avx512_bf16' | 'none' | 'unknown';

/**
 * The CPU's bf16 instructions, read from /proc/cpuinfo's flags (AMX first). Why it matters: without
 * them oneDNN emulates bf16 through fp32 and bf16 autocast trains slower than fp32 (resnet20 0.64×
 * on an Ice Lake Xeon); with AMX it trains 1.6–2.1× faster (docs/benchmarks.md).
 */
export function cpuBf16(cpuinfo: string | null = readCpuinfo()): CpuBf16 {
  const line = cpuinfo === null ? undefined : /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1];
  if (line === undefined) return 'unknown'; // not Linux, or not x86 (aarch64 lists 'Features')
  const flags = new Set(line.trim().split(/\s+/));
  if (flags.has('amx_bf16')) return 'amx_bf16';
  if (flags.has('avx512_bf16')) return 'avx512_bf16';
  return 'none';
}

function readCpuinfo(): string | null {
  try {
    return fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return null;
  }
}
