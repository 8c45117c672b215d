import { Tensor } from '../engine/tensor';
import { noGrad } from '../engine/autograd';
import { InputError } from '../errors';
import { Buffer, Parameter } from './parameter';

export type StateDict = Map<string, Tensor>;

const FLOATING = new Set<string>(['float16', 'bfloat16', 'float32', 'float64']);

/**
 * Base of every layer and model, after torch.nn.Module: parameters, buffers and submodules are found
 * by attribute (arrays of modules too, named by index), in definition order.
 */
export abstract class Module {
  training = true;

  /** Direct submodules with their attribute names. */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [k, v] of Object.entries(this)) {
      if (v instanceof Module) out.push([k, v]);
      else if (Array.isArray(v)) v.forEach((m, i) => { if (m instanceof Module) out.push([`${k}.${i}`, m]); });
    }
    return out;
  }

  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [k, m] of this.namedChildren()) out.push(...m.namedModules(prefix ? `${prefix}.${k}` : k));
    return out;
  }

  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** Tensors of a kind held directly or in arrays (named by index, like torch.nn.ParameterList). */
  private ownTensors<T extends Tensor>(kind: new (...a: any[]) => T): [string, T][] {
    const out: [string, T][] = [];
    for (const [k, v] of Object.entries(this)) {
      if (v instanceof kind) out.push([k, v]);
      else if (Array.isArray(v)) v.forEach((t, i) => { if (t instanceof kind) out.push([`${k}.${i}`, t]); });
    }
    return out;
  }

  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [name, m] of this.namedModules(prefix)) {
      for (const [k, p] of m.ownTensors(Parameter)) out.push([name ? `${name}.${k}` : k, p]);
    }
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = ''): [string, Buffer][] {
    const out: [string, Buffer][] = [];
    for (const [name, m] of this.namedModules(prefix)) {
      for (const [k, b] of m.ownTensors(Buffer)) out.push([name ? `${name}.${k}` : k, b]);
    }
    return out;
  }

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Turns gradient recording for every parameter on or off (freezing). */
  requiresGrad_(flag: boolean): this {
    for (const p of this.parameters()) p.requiresGrad_(flag);
    return this;
  }

  freeze(): this {
    return this.requiresGrad_(false);
  }

  /** Parameters and buffers by dotted name; the values are the live tensors, not copies. */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    for (const [k, p] of this.namedParameters()) out.set(k, p);
    for (const [k, b] of this.namedBuffers()) out.set(k, b);
    return out;
  }

  /**
   * Copies values in by name. Strict mode: every key must match in name and shape, else one
   * InputError naming what is missing, unexpected or mis-shaped (and nothing is changed).
   */
  loadStateDict(state: StateDict | Record<string, Tensor>, strict = true): { missing: string[]; unexpected: string[] } {
    const source = state instanceof Map ? state : new Map(Object.entries(state));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !source.has(k));
    const unexpected = [...source.keys()].filter((k) => !own.has(k));
    if (strict && (missing.length || unexpected.length)) {
      const parts = [];
      if (missing.length) parts.push(`missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` (+${missing.length - 5})` : ''}`);
      if (unexpected.length) parts.push(`unexpected ${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ` (+${unexpected.length - 5})` : ''}`);
      throw new InputError(`state dict does not match the model: ${parts.join('; ')}`);
    }
    for (const [k, t] of own) {
      const src = source.get(k);
      if (!src) continue;
      const a = t.shape, b = src.shape;
      if (a.length !== b.length || a.some((d, i) => d !== b[i])) {
        throw new InputError(`state dict entry '${k}' has shape [${b}], the model expects [${a}]`);
      }
    }
    noGrad(() => {
      for (const [k, t] of own) {
        const src = source.get(k);
        if (src) t.copy_(src);
      }
    });
    return { missing, unexpected };
  }

  /**
   * Moves 4-d parameters and buffers to a memory format (channels_last is faster for convolutions
   * on CPU), every tensor to a device ('cuda:0'), or every floating-point tensor to a floating dtype
   * ('float64'; integer buffers such as BN's batch count keep theirs), in place: optimizers keep
   * pointing at the same parameters.
   */
  to(target: 'channels_last' | 'contiguous' | string): this {
    const format = target === 'channels_last' || target === 'contiguous';
    const dtype = FLOATING.has(target);
    noGrad(() => {
      for (const t of this.stateDict().values()) {
        const moved = format
          ? (t.ndim === 4 ? t.contiguous(target) : null)
          : dtype ? (FLOATING.has(t.dtype) && t.dtype !== target ? t.to(target) : null)
          : t.device !== target ? t.to(target) : null;
        if (moved) {
          t.setData_(moved);
          moved.dispose();
        }
      }
    });
    return this;
  }

  /** The device of the module's first parameter (or buffer): where its inputs must be. 'cpu' when it has none. */
  get device(): string {
    const t = this.parameters()[0] ?? this.namedBuffers()[0]?.[1];
    return t ? t.device : 'cpu';
  }

  /** Frees every parameter and buffer now rather than at GC. */
  dispose(): void {
    for (const t of this.stateDict().values()) t.dispose();
  }

  abstract forward(...args: any[]): any;
}
