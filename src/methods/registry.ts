import { Module } from '../nn/module';
import { InputError } from '../errors';
import type { Method, MethodModel } from './method';
import { linearProbe } from './linear-probe';
import { finetune } from './finetune';
import { l2sp } from './l2sp';
import { bss } from './bss';
import { spottune } from './spottune';
import { adafilter, adafilterNoGbn, adafilterStatic, randomFilter } from './adafilter';
import { gna } from './gna';
import { tapProbe } from './tap-probe';

const methods: Method<any>[] = [linearProbe, finetune, l2sp, bss, adafilter, adafilterNoGbn, randomFilter, adafilterStatic, spottune, gna, tapProbe];

export function methodNames(): string[] {
  return methods.map((m) => m.name);
}

export function getMethod(name: string): Method<any> {
  const m = methods.find((x) => x.name === name);
  if (!m) throw new InputError(`unknown method '${name}' (known: ${methodNames().join(', ')})`);
  return m;
}

/** Applies method `name` to a backbone (taken over and modified in place) for `numClasses` classes. */
export function applyMethod(name: string, backbone: Module, numClasses: number, options: Record<string, unknown> = {}): MethodModel {
  return getMethod(name).apply(backbone, numClasses, options);
}
