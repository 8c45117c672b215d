/**
 * cpuBf16 reads the CPU's bf16 instructions from /proc/cpuinfo's flags: what bench results record
 * and what decides the CLI's note that bf16 is emulated. The flag lines are cut from the two Xeons
 * these benchmarks ran on (Sapphire Rapids with AMX; Ice Lake without bf16 instructions).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { cpuBf16 } from '../../src/engine/device';

const cpuinfo = (flags: string) => `processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor @ 2.60GHz\nflags\t\t: ${flags}\nbugs\t\t: spectre_v1\n`;
const ICE_LAKE = 'fpu vme avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bitalg avx512_vpopcntdq';

test('AMX is reported first, then AVX512-BF16, then none', () => {
  assert.equal(cpuBf16(cpuinfo(`${ICE_LAKE} avx512_bf16 amx_bf16 amx_tile amx_int8`)), 'amx_bf16');
  assert.equal(cpuBf16(cpuinfo(`${ICE_LAKE} avx512_bf16`)), 'avx512_bf16');
  assert.equal(cpuBf16(cpuinfo(ICE_LAKE)), 'none');
});

test('a flag is matched whole: amx_tile or avx512_bf16x are not bf16 instructions', () => {
  assert.equal(cpuBf16(cpuinfo(`${ICE_LAKE} amx_tile amx_int8 avx512_bf16x`)), 'none');
});

test('no cpuinfo (not Linux) or no x86 flags line (aarch64) is unknown, not none: no note is printed on a guess', () => {
  assert.equal(cpuBf16(null), 'unknown');
  assert.equal(cpuBf16('processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n'), 'unknown');
});

test('on this machine it agrees with the flags line of /proc/cpuinfo', { skip: !fs.existsSync('/proc/cpuinfo') && 'no /proc/cpuinfo' }, () => {
  const flags = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '';
  const expected = / amx_bf16( |$)/.test(flags) ? 'amx_bf16' : / avx512_bf16( |$)/.test(flags) ? 'avx512_bf16' : 'none';
  assert.equal(cpuBf16(), expected);
});
