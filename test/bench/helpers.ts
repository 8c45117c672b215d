/** Shared by the benchmark-suite tests. */
import assert from 'node:assert/strict';
import { tmpDir as makeTmpDir } from '../helpers/tmp';

/** A fresh temporary folder, removed when the test process exits. */
export const tmpDir = (tag: string): string => makeTmpDir(`adafilter-transfer-${tag}`);

export const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
