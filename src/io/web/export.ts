/**
 * `models export --format web`: a folder a static web server can serve, holding the model as
 * ONNX, its class names and preprocessing (model.json), a page that classifies dropped images with
 * onnxruntime-web, and onnxruntime-web's files themselves, so that it works offline.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../../errors';
import { Module } from '../../nn/module';
import { ResolvedTransform } from '../../data/transforms';
import { exportOnnx } from '../onnx/export';
import { describeWriteError, tempPathFor } from '../atomic';
import { appScript, indexHtml, ORT_FILES } from './page';

export interface WebExportOptions {
  /** Class names, in the model's output order. */
  classes: string[];
  /** The evaluation transform `predict` applies (run.transform of a loaded run). */
  transform: ResolvedTransform;
  /** Page title and ONNX graph name. */
  title: string;
  /** How many classes the page lists (default 5). */
  top?: number;
}

/** What model.json holds: everything the page needs besides the graph. */
export interface WebModelInfo {
  format: 'adafilter-web-1';
  title: string;
  classes: string[];
  transform: ResolvedTransform;
  input: string;
  output: string;
  top: number;
}

export const WEB_INFO_FILE = 'model.json';

function ortDistDir(): string {
  let main: string;
  try { main = require.resolve('onnxruntime-web'); } catch {
    throw new InputError('models export --format web: the npm package onnxruntime-web is not installed (npm install onnxruntime-web)');
  }
  const dir = path.dirname(main);
  const missing = ORT_FILES.filter((f) => !fs.existsSync(path.join(dir, f)));
  if (missing.length) throw new InputError(`models export --format web: ${dir} lacks ${missing.join(', ')} (an onnxruntime-web without its WebAssembly build?)`);
  return dir;
}

/** A folder we may replace: missing, empty, or an earlier web export (it has our model.json). */
function checkTarget(dir: string): void {
  const parent = path.dirname(path.resolve(dir));
  if (!fs.existsSync(parent) || !fs.statSync(parent).isDirectory()) throw new InputError(`${dir}: the folder ${parent} does not exist`);
  if (!fs.existsSync(dir)) return;
  if (!fs.statSync(dir).isDirectory()) throw new InputError(`${dir}: exists and is not a folder`);
  if (fs.readdirSync(dir).length === 0) return;
  let format: unknown;
  try { format = (JSON.parse(fs.readFileSync(path.join(dir, WEB_INFO_FILE), 'utf8')) as WebModelInfo).format; } catch { format = null; }
  if (format !== 'adafilter-web-1') throw new InputError(`${dir}: exists and is not an earlier web export; choose a new or empty folder`);
}

/**
 * Writes the page into `dir`: built in a temporary sibling folder and renamed into place, so a
 * failure leaves no half page and an earlier export stays until the new one is complete.
 */
export function exportWebPage(model: Module, dir: string, o: WebExportOptions): WebModelInfo {
  const t = o.transform;
  if (o.classes.length === 0) throw new InputError('models export --format web: the model has no class names');
  checkTarget(dir);
  const ortDir = ortDistDir();
  const info: WebModelInfo = { format: 'adafilter-web-1', title: o.title, classes: o.classes, transform: t, input: 'input', output: 'logits', top: o.top ?? 5 };
  const tmp = tempPathFor(path.resolve(dir));
  try {
    fs.mkdirSync(tmp);
    exportOnnx(model, path.join(tmp, 'model.onnx'), { inputShape: [t.channels, t.height, t.width], graphName: o.title });
    fs.writeFileSync(path.join(tmp, WEB_INFO_FILE), JSON.stringify(info, null, 2) + '\n');
    fs.writeFileSync(path.join(tmp, 'index.html'), indexHtml(o.title));
    fs.writeFileSync(path.join(tmp, 'app.js'), appScript());
    for (const f of ORT_FILES) fs.copyFileSync(path.join(ortDir, f), path.join(tmp, f));
    const old = fs.existsSync(dir) ? `${tmp}.old` : null;
    if (old) fs.renameSync(dir, old);
    fs.renameSync(tmp, dir);
    if (old) fs.rmSync(old, { recursive: true, force: true });
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (e instanceof InputError) throw e;
    throw describeWriteError(dir, e);
  }
  return info;
}
