import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

// Which folder may import which is part of the design (README, layout): these tests read every
// source file's import and export-from specifiers and resolve them to files.
const root = path.resolve(__dirname, '..', '..');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Every relative module a file imports (static, dynamic and `export … from`), as absolute paths. */
function importsOf(file: string): string[] {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, false);
  const specs: string[] = [];
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      specs.push(n.moduleSpecifier.text);
    } else if (ts.isCallExpression(n) && n.arguments.length === 1 && ts.isStringLiteral(n.arguments[0])
      && (n.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(n.expression) && n.expression.text === 'require'))) {
      specs.push(n.arguments[0].text);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return specs.filter((s) => s.startsWith('.')).map((s) => path.resolve(path.dirname(file), s));
}

function violations(from: string, forbidden: string): string[] {
  const banned = path.join(root, forbidden);
  const start = path.join(root, from);
  const files = fs.statSync(start).isDirectory() ? sources(start) : [start];
  return files.flatMap((f) => importsOf(f)
    .filter((m) => m === banned || m.startsWith(banned + path.sep))
    .map((m) => `${path.relative(root, f)} imports ${path.relative(root, m)}`));
}

test('the import reader sees the bench command importing bench/ and src/ (so an empty result below means something)', () => {
  const mods = importsOf(path.join(root, 'bench', 'command.ts')).map((m) => path.relative(root, m));
  assert.ok(mods.includes(path.join('bench', 'throughput')), mods.join(', '));
  assert.ok(mods.includes(path.join('src', 'cli', 'command')), mods.join(', '));
});

test('no file in src/ imports bench/', () => {
  assert.deepEqual(violations('src', 'bench'), []);
});

test('io/ does not import methods/, and the ONNX exporter knows nn/ layers only (each module class writes its own: toOnnx)', () => {
  assert.deepEqual(violations(path.join('src', 'io'), path.join('src', 'methods')), []);
  assert.deepEqual(violations(path.join('src', 'io', 'onnx', 'export.ts'), path.join('src', 'models')), []);
});
