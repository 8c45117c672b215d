import { JsonError, JsonValue } from './strict-json';

/**
 * A parser for the data literal inside a minified JavaScript module (how nsfwjs ships its model
 * JSON: `{modelTopology:{keras_version:"2.2.4",…,sparse:!1},…}`). Model files come from strangers, so
 * the module is read as data and never evaluated; only what a minifier writes for JSON data is
 * accepted: objects with bare or quoted keys, arrays, strings in either quote, numbers (also `.5`,
 * `5.`, `-.5`, `1e-7`), `!0` / `!1` / `true` / `false` for booleans, `null` and `void 0` (as null).
 * The result has strict-json's shape (objects as Maps), so one validator serves both formats.
 * Parsing starts at `start` and returns where the literal ends, for the caller to check what follows.
 */
export function parseJsLiteral(text: string, start = 0, maxDepth = 32): { value: JsonValue; end: number } {
  let i = start;
  const n = text.length;
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const fail = (msg: string): never => { throw new JsonError(msg, i); };

  const str = (): string => {
    const quote = text[i];
    const begin = ++i;
    let out = '';
    let from = begin;
    while (i < n && text[i] !== quote) {
      const c = text.charCodeAt(i);
      if (c < 0x20) fail('control character in a string');
      if (c !== 0x5c) { i++; continue; }
      out += text.slice(from, i);
      const e = text[i + 1];
      const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', v: '\v', '0': '\0', '"': '"', "'": "'", '\\': '\\', '/': '/' };
      if (e !== undefined && Object.prototype.hasOwnProperty.call(simple, e) && !(e === '0' && /[0-9]/.test(text[i + 2] ?? ''))) {
        out += simple[e];
        i += 2;
      } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
        out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
        i += 6;
      } else if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 2, i + 4))) {
        out += String.fromCharCode(parseInt(text.slice(i + 2, i + 4), 16));
        i += 4;
      } else {
        fail('bad escape in a string');
      }
      from = i;
    }
    if (i >= n) { i = begin - 1; fail('unterminated string'); }
    out += text.slice(from, i);
    i++;
    return out;
  };

  const IDENT = /[A-Za-z_$][A-Za-z0-9_$]*/y;
  const NUMBER = /-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/y;

  const key = (): string => {
    const c = text[i];
    if (c === '"' || c === "'") return str();
    IDENT.lastIndex = i;
    const m = IDENT.exec(text);
    if (m) { i += m[0].length; return m[0]; }
    NUMBER.lastIndex = i;
    const num = NUMBER.exec(text);
    if (num && num[0][0] !== '-') { i += num[0].length; return String(Number(num[0])); }
    return fail('expected a key');
  };

  const value = (depth: number): JsonValue => {
    if (depth > maxDepth) fail(`nesting deeper than ${maxDepth}`);
    ws();
    if (i >= n) fail('unexpected end');
    const c = text[i];
    if (c === '{') {
      i++;
      const out = new Map<string, JsonValue>();
      for (;;) {
        ws();
        if (text[i] === '}') { i++; return out; }
        const keyAt = i;
        const k = key();
        if (out.has(k)) { i = keyAt; fail(`duplicate key ${JSON.stringify(k.slice(0, 80))}`); }
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        out.set(k, value(depth + 1));
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return out; }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const out: JsonValue[] = [];
      for (;;) {
        ws();
        if (text[i] === ']') { i++; return out; }
        out.push(value(depth + 1));
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return out; }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"' || c === "'") return str();
    for (const [word, v] of [['!0', true], ['!1', false], ['true', true], ['false', false], ['null', null], ['void 0', null]] as const) {
      if (text.startsWith(word, i) && !/[A-Za-z0-9_$]/.test(text[i + word.length] ?? '')) { i += word.length; return v; }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m || /[A-Za-z_$]/.test(text[i + m[0].length] ?? '')) return fail('unexpected character');
    i += m[0].length;
    const v = Number(m[0]);
    if (!Number.isFinite(v)) fail('number out of range');
    return v;
  };

  const v = value(0);
  return { value: v, end: i };
}
