import * as fs from 'node:fs';
import * as path from 'node:path';
import { SHIPPED } from '../../train/shipped';
import { Command, intFlag, parseFlags } from '../command';
import { InputError } from '../../errors';
import { Module } from '../../nn/module';
import { Tensor } from '../../engine/tensor';
import { randn } from '../../engine/random';
import { noGrad } from '../../engine/autograd';
import { tidy } from '../../engine/scope';
import { Backbone } from '../../models/backbone';
import { modelNames, modelSpec } from '../../models/registry';
import { getMethod } from '../../methods/registry';
import { saveSafetensors } from '../../io/safetensors';
import { exportOnnx } from '../../io/onnx/export';
import { exportWebPage } from '../../io/web/export';
import { nsfwjsMobileNetV2Dir } from '../../io/tfjs-import';
import {
  ArchOptions, BackboneAsIs, InputSpec, META, openBackboneAsIs, rebuildArchitecture,
} from '../../train/backbones';
import { loadRun } from '../../train/load-run';
import { isRunFolder, readResult, RUN_FILES } from '../../train/run-folder';
import type { ModelCard } from '../../train/pretrain';
import { readSafetensorsHeader } from '../../io/safetensors';
import { knownStatsName, normalizeStats, parseNormalize } from '../../data/transforms';
import { cutPoints } from '../../methods/linear-probe';

const usage = `usage: adafilter models list [--json]
       adafilter models inspect MODEL [--json]
       adafilter models import SOURCE --out FILE.safetensors [--arch A] [--normalize N]
       adafilter models export RUN_DIR|BACKBONE --format onnx|safetensors --out FILE [--input-size N]
       adafilter models export RUN_DIR --format web --out DIR
  MODEL / BACKBONE: default (the shipped backbone), nsfwjs, an architecture, a .safetensors or
  .onnx file (optionally ARCH:FILE), a TF.js model.json or its folder; inspect also takes a run folder.
  import writes our safetensors (architecture and input preprocessing in its metadata), so that
  --backbone FILE.safetensors then works directly. The preprocessing recorded is the source's:
  ImageNet mean/std for torchvision / timm / ONNX weights, x/255 for nsfwjs and Keras MobileNetV2;
  --normalize dataset|imagenet|none|MEAN,STD|M1,M2,M3,S1,S2,S3 records another.
  inspect lists a backbone's cut points (for train --method linear-probe --features-from BLOCK). export writes the run's evaluation forward pass as
  ONNX (input: the normalised image, see run.json's input.resolvedStats) or its weights; --format web
  writes a static page (ONNX model, class names, predict's preprocessing, onnxruntime-web) to serve
  from DIR with any web server: drop an image, see the top 5.`;

function countParams(m: Module): number {
  return m.parameters().reduce((a, p) => a + p.numel, 0);
}

/** Parameters of the backbone without its classifier, and the classifier's. */
function paramSplit(model: Backbone): { backbone: number; classifier: number } {
  const head = countParams(model.classifier().module);
  return { backbone: countParams(model) - head, classifier: head };
}

function readCard(meta: Record<string, string> | null): ModelCard | null {
  const raw = meta?.[META.card];
  if (raw === undefined) return null;
  try { return JSON.parse(raw) as ModelCard; } catch { return null; }
}

function nsfwjsInstalled(): boolean {
  try { return fs.existsSync(nsfwjsMobileNetV2Dir()); } catch { return false; }
}

const fmtM = (n: number) => `${(n / 1e6).toFixed(2)} M`;
const out = (s: string) => process.stdout.write(s + '\n');

async function list(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { json: { type: 'boolean' } }, 'models list');
  if (positionals.length) throw new InputError(`models list: unexpected argument '${positionals[0]}'`);
  const architectures = modelNames().map((name) => {
    const s = modelSpec(name);
    const m = s.build(1000);
    const params = countParams(m);
    m.dispose();
    return { name, family: s.family, inputSize: s.inputSize, params, description: s.description, weightsFrom: s.weightsFrom ?? null };
  });
  const shipped = SHIPPED.map((b): Record<string, unknown> => {
    const card = b.file.replace(/\.safetensors$/, '.md');
    if (!fs.existsSync(b.file)) return { name: b.name, available: false, file: b.file, build: b.build };
    const meta = readSafetensorsHeader(b.file).metadata;
    return { name: b.name, available: true, file: b.file, arch: meta?.[META.arch] ?? null, card: readCard(meta), cardFile: fs.existsSync(card) ? card : null };
  });
  const mnv2 = architectures.find((a) => a.name === 'mobilenetv2')!;
  const nsfw = {
    name: 'nsfwjs', available: nsfwjsInstalled(), arch: 'mobilenetv2', params: mnv2.params - (1280 * 1000 + 1000),
    description: 'nsfwjs (npm, MIT) Keras MobileNetV2 α 1.0: ImageNet-initialised, then tuned on a 5-class task; Keras padding, BN eps 1e-3, input x/255 at 224 px; its head is dropped',
    ...(nsfwjsInstalled() ? {} : { install: 'npm install nsfwjs@4.4.0' }),
  };
  if (values.json) {
    out(JSON.stringify({ architectures, weights: [...shipped, nsfw] }, null, 2));
    return 0;
  }
  out('architectures (random initialisation; parameters with a 1000-class head):');
  for (const a of architectures) out(`  ${a.name.padEnd(18)} ${a.family.padEnd(12)} ${String(a.inputSize).padStart(3)} px ${fmtM(a.params).padStart(9)}  ${a.description}`);
  out('');
  out('pretrained weights (--backbone NAME):');
  for (const def of shipped) {
    const name = String(def.name).padEnd(18);
    if (def.available) {
      const c = def.card as ModelCard | null;
      const what = c ? `${c.arch} pretrained on ${c.source} (${c.classes} classes), val ${(100 * c.valAcc).toFixed(2)}%, test ${(100 * c.testAcc).toFixed(2)}%, ${c.input.size} px ${c.input.channels} ch` : `${String(def.arch)} (no model card in the file)`;
      out(`  ${name} ${what}; ${def.file}${def.cardFile ? `, card ${def.cardFile}` : ''}`);
    } else {
      out(`  ${name} missing (${def.file}); build it with: ${def.build}`);
    }
  }
  out(`  ${'nsfwjs'.padEnd(18)} ${nsfw.available ? '' : '(not installed: npm install nsfwjs@4.4.0) '}${nsfw.description}; ${fmtM(nsfw.params)} backbone parameters`);
  return 0;
}

interface LayerRow { conv: string; bn: string; role: string; kind: string; in: number; out: number; kernel: number; stride: number; groups: number; pads: number[]; bnEps: number }

function layersOf(model: Backbone): LayerRow[] {
  return model.convBns().map((c) => {
    const p = (c.conv as unknown as { pads?: number[] }).pads ?? [c.conv.padding, c.conv.padding, c.conv.padding, c.conv.padding];
    return {
      conv: c.convName, bn: c.bnName, role: c.role, kind: c.kind, in: c.conv.inChannels, out: c.conv.outChannels,
      kernel: c.conv.kernelSize, stride: c.conv.stride, groups: c.conv.groups, pads: [...p], bnEps: c.bn.eps,
    };
  });
}

function inputText(i: InputSpec): string {
  const known = i.normalize === 'dataset' ? null : knownStatsName(i.normalize);
  const n = i.normalize === 'dataset' ? "the target's training statistics" : `mean [${i.normalize.mean.map((x) => +x.toFixed(4)).join(', ')}], std [${i.normalize.std.map((x) => +x.toFixed(4)).join(', ')}]${known ? ` (${known})` : ''}`;
  return `${i.size} px, ${i.channels} channel${i.channels > 1 ? 's' : ''}, pixels in [0, 1] normalised with ${n}`;
}

function printCuts(model: Backbone): void {
  const cuts = cutPoints(model);
  out(`cuts     linear-probe --features-from: ${cuts.map((c) => `${c.name} (${c.channels})`).join(', ')}`);
}

function printLayers(rows: LayerRow[]): void {
  out(`layers   ${rows.length} conv+BN pairs:`);
  for (const r of rows) {
    out(`  ${r.conv.padEnd(28)} ${r.role.padEnd(8)} ${r.kind.padEnd(9)} ${`${r.in}→${r.out}`.padEnd(10)} ${r.kernel}×${r.kernel}/${r.stride}${r.groups > 1 ? ` g${r.groups}` : ''} pads [${r.pads.join(',')}] eps ${r.bnEps}`);
  }
}

async function inspect(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { json: { type: 'boolean' }, arch: { type: 'string' } }, 'models inspect');
  if (positionals.length !== 1) throw new InputError('models inspect: expected one MODEL (see --help)');
  const spec = positionals[0];
  if (fs.existsSync(spec) && fs.statSync(spec).isDirectory() && isRunFolder(spec)) {
    const run = loadRun(spec);
    try {
      const c = run.config;
      // Methods replace convs (AdaFilter's gated layers): the layer table is of the architecture as built.
      const plain = rebuildArchitecture(c.arch, c.classes.length, c.archOptions);
      const layers = layersOf(plain);
      plain.dispose();
      const result = readResult(spec);
      const info = {
        kind: 'run', dir: path.resolve(spec), method: c.method, methodOptions: c.methodOptions, backbone: c.backbone, arch: c.arch,
        archOptions: c.archOptions ?? null, data: c.data, classes: c.classes, epochs: c.epochs,
        input: { size: c.inputSize, channels: c.channels, normalize: c.input.resolvedStats },
        params: run.model.parameterCounts(),
        result: result ? { bestEpoch: result.bestEpoch, valAcc: result.val.acc, testAcc: result.test.acc } : null,
        layers,
      };
      if (values.json) { out(JSON.stringify(info, null, 2)); return 0; }
      out(`run      ${info.dir}`);
      out(`method   ${c.method}${Object.keys(c.methodOptions).length ? ` ${JSON.stringify(c.methodOptions)}` : ''}`);
      out(`backbone ${c.backbone} (${c.arch}${c.archOptions ? `, ${JSON.stringify(c.archOptions)}` : ''})`);
      out(`data     ${c.data}, ${c.classes.length} classes: ${c.classes.length > 12 ? `${c.classes.slice(0, 12).join(', ')}, …` : c.classes.join(', ')}`);
      out(`input    ${inputText({ size: c.inputSize, channels: c.channels, normalize: c.input.resolvedStats })}`);
      out(`params   ${info.params.total} total, ${info.params.trainable} trainable, ${info.params.frozen} frozen`);
      out(`result   ${result ? `best epoch ${result.bestEpoch}/${c.epochs}, val ${(100 * result.val.acc).toFixed(2)}%, test ${(100 * result.test.acc).toFixed(2)}%` : 'not finished'}`);
      printLayers(info.layers);
      return 0;
    } finally {
      run.model.dispose();
    }
  }
  const b = openBackboneAsIs(spec, { arch: values.arch as string | undefined });
  try {
    const params = paramSplit(b.model);
    const card = readCard(b.metadata);
    const info = {
      kind: 'backbone', spec, arch: b.arch, archOptions: b.archOptions ?? null, family: b.model.family, description: b.description,
      input: b.input, params: { ...params, total: params.backbone + params.classifier },
      classifier: b.hasHead ? { name: b.model.classifier().name, classes: b.model.classifier().module.outFeatures } : null,
      featureDim: b.model.featureDim, card, metadata: b.metadata ? Object.fromEntries(Object.entries(b.metadata).filter(([k]) => k !== META.card)) : null,
      cutPoints: cutPoints(b.model), layers: layersOf(b.model),
    };
    if (values.json) { out(JSON.stringify(info, null, 2)); return 0; }
    out(`model    ${spec}: ${b.description}`);
    out(`arch     ${b.arch} (${b.model.family})${b.archOptions ? ` ${JSON.stringify(b.archOptions)}` : ''}`);
    out(`input    ${inputText(b.input)}`);
    out(`params   ${params.backbone} backbone + ${b.hasHead ? `${params.classifier} classifier (${info.classifier!.classes} classes)` : 'no classifier'}; ${b.model.featureDim} features`);
    if (card) out(`card     ${card.arch} pretrained on ${card.source}, ${card.classes} classes, ${card.epochs} epochs, val ${(100 * card.valAcc).toFixed(2)}%, test ${(100 * card.testAcc).toFixed(2)}%; ${card.command}`);
    printCuts(b.model);
    printLayers(info.layers);
    return 0;
  } finally {
    b.model.dispose();
  }
}

/** The state dict without the classifier (a fresh one would be random: better none). */
function withoutHead(model: Backbone): Map<string, Tensor> {
  const head = `${model.classifier().name}.`;
  return new Map([...model.stateDict()].filter(([k]) => !k.startsWith(head)));
}

function metaOf(arch: string, archOptions: ArchOptions | undefined, input: InputSpec, extra: Record<string, string> = {}): Record<string, string> {
  return {
    [META.arch]: arch, ...(archOptions ? { [META.archOptions]: JSON.stringify(archOptions) } : {}),
    [META.input]: JSON.stringify(input), ...extra,
  };
}

function checkOut(file: string | undefined, ext: string, where: string): string {
  if (!file) throw new InputError(`${where}: --out FILE${ext} is required`);
  if (!file.endsWith(ext)) throw new InputError(`${where}: --out must end in ${ext}, got '${file}'`);
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new InputError(`${file}: the folder ${dir} does not exist`);
  return file;
}

/**
 * Rebuilds the written file as openBackbone will and compares features on a random input: the
 * metadata must describe the model exactly (padding and BN eps are not in the weights).
 */
function verifyRoundTrip(b: BackboneAsIs, file: string): number {
  const copy = openBackboneAsIs(file);
  try {
    const side = Math.max(32, Math.min(b.input.size, 64));
    return tidy(() => noGrad(() => {
      const x = randn([2, b.input.channels, side, side]);
      const d = b.model.features(x).sub(copy.model.features(x)).abs().max().item();
      return d;
    }));
  } finally {
    copy.model.dispose();
  }
}

async function importCmd(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { out: { type: 'string' }, arch: { type: 'string' }, normalize: { type: 'string' }, json: { type: 'boolean' } }, 'models import');
  if (positionals.length !== 1) throw new InputError('models import: expected one SOURCE (nsfwjs, a .onnx, TF.js model.json or .safetensors file)');
  const file = checkOut(values.out as string | undefined, '.safetensors', 'models import');
  const source = positionals[0];
  if (modelNames().includes(source)) throw new InputError(`models import: '${source}' is an architecture with random weights; import a weights file (nsfwjs, .onnx, model.json, .safetensors)`);
  const normalize = values.normalize === undefined ? null : parseNormalize(values.normalize as string);
  const b = openBackboneAsIs(source, { arch: values.arch as string | undefined });
  if (normalize !== null) b.input.normalize = normalizeStats(normalize);
  try {
    const tensors = b.hasHead ? b.model.stateDict() : withoutHead(b.model);
    saveSafetensors(tensors, file, metaOf(b.arch, b.archOptions, b.input, { 'adafilter.source': source }));
    const diff = verifyRoundTrip(b, file);
    if (!(diff <= 1e-5)) throw new Error(`${file}: reloaded features differ by ${diff}`);
    const p = paramSplit(b.model);
    const info = { out: file, arch: b.arch, archOptions: b.archOptions ?? null, input: b.input, params: p.backbone, classifier: b.hasHead ? b.model.classifier().module.outFeatures : null, reloadMaxDiff: diff };
    if (values.json) out(JSON.stringify(info, null, 2));
    else out(`${source} → ${file}: ${b.arch}${b.archOptions ? ` (${b.archOptions.family === 'mobilenetv2' ? `${b.archOptions.padding} padding, ` : ''}BN eps ${b.archOptions.bnEps})` : ''}, ${p.backbone} backbone parameters, ${b.hasHead ? `classifier of ${info.classifier} classes` : 'no classifier'}; input ${inputText(b.input)}; use it with --backbone ${file}`);
    return 0;
  } finally {
    b.model.dispose();
  }
}

/** A run as a static page (io/web/export.ts); a bare backbone has no class names to show. */
function exportWeb(src: string, values: Record<string, unknown>): number {
  const dir = values.out as string | undefined;
  if (!dir) throw new InputError('models export: --format web needs --out DIR');
  if (values['input-size'] !== undefined) throw new InputError('models export: --input-size does not apply to --format web (the page preprocesses as predict does, at the run\'s size)');
  if (!(fs.existsSync(src) && fs.statSync(src).isDirectory() && isRunFolder(src))) {
    throw new InputError(`${src}: not a run folder; --format web exports a trained run (it needs the class names)`);
  }
  const run = loadRun(src);
  try {
    const c = run.config;
    const t = run.transform;
    exportWebPage(run.model, dir, { classes: c.classes, transform: t, title: `${c.method} on ${c.arch}: ${c.data}` });
    out(`${src} (${c.method} on ${c.arch}, ${c.classes.length} classes) → ${dir}: index.html, model.onnx (input [N, ${t.channels}, ${t.height}, ${t.width}]), model.json, onnxruntime-web; serve it, e.g. python3 -m http.server -d ${dir}`);
    return 0;
  } finally {
    run.model.dispose();
  }
}

async function exportCmd(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    format: { type: 'string' }, out: { type: 'string' }, 'input-size': { type: 'string' }, arch: { type: 'string' },
  }, 'models export');
  if (positionals.length !== 1) throw new InputError('models export: expected one RUN_DIR or BACKBONE');
  const format = values.format as string | undefined;
  if (format !== 'onnx' && format !== 'safetensors' && format !== 'web') throw new InputError(`models export: --format must be onnx, safetensors or web${format ? `, got '${format}'` : ''}`);
  if (format === 'web') return exportWeb(positionals[0], values);
  const file = checkOut(values.out as string | undefined, format === 'onnx' ? '.onnx' : '.safetensors', 'models export');
  const sizeFlag = values['input-size'] === undefined ? null : intFlag(values['input-size'] as string, 'input-size', 0, 8);
  const src = positionals[0];
  if (fs.existsSync(src) && fs.statSync(src).isDirectory() && isRunFolder(src)) {
    const run = loadRun(src);
    try {
      const c = run.config;
      const size = sizeFlag ?? c.inputSize;
      if (format === 'onnx') {
        exportOnnx(run.model, file, { inputShape: [c.channels, size, size], graphName: `${c.method}-${c.arch}` });
        out(`${src} (${c.method} on ${c.arch}, ${c.classes.length} classes) → ${file}: input [N, ${c.channels}, ${size}, ${size}] normalised with mean [${c.input.resolvedStats.mean.map((x) => +x.toFixed(4))}], std [${c.input.resolvedStats.std.map((x) => +x.toFixed(4))}]; output logits [N, ${c.classes.length}]`);
        return 0;
      }
      const input: InputSpec = { size, channels: c.channels, normalize: c.input.resolvedStats };
      const extra = { 'adafilter.method': c.method, 'adafilter.classes': JSON.stringify(c.classes), 'adafilter.source': path.resolve(src) };
      // A probe cut at an inner block has no layers after it: its weights are not a whole backbone.
      if (getMethod(c.method).evaluatesAsBackbone && !c.methodOptions.featuresFrom) {
        // These methods train the backbone itself: its bare weights (with the new head) are a backbone for --backbone.
        const bare = new Map([...run.model.stateDict()].filter(([k]) => k.startsWith('backbone.')).map(([k, t]) => [k.slice('backbone.'.length), t]));
        saveSafetensors(bare, file, metaOf(c.arch, c.archOptions, input, extra));
        out(`${src} (${c.method}) → ${file}: the trained backbone with its ${c.classes.length}-class head; usable as --backbone ${file}`);
      } else {
        saveSafetensors(run.model, file, metaOf(c.arch, c.archOptions, input, extra));
        out(`${src} (${c.method}) → ${file}: the whole ${c.method} model (${RUN_FILES.model} with its architecture in the metadata)`);
      }
      return 0;
    } finally {
      run.model.dispose();
    }
  }
  const b = openBackboneAsIs(src, { arch: values.arch as string | undefined });
  try {
    const size = sizeFlag ?? b.input.size;
    if (format === 'onnx') {
      if (!b.hasHead) throw new InputError(`${src}: has no classifier of its own (a random one would make the graph meaningless); export a trained run instead`);
      exportOnnx(b.model, file, { inputShape: [b.input.channels, size, size], graphName: b.arch });
      out(`${src} → ${file}: ${b.arch}, input [N, ${b.input.channels}, ${size}, ${size}], logits [N, ${b.model.classifier().module.outFeatures}]`);
    } else {
      saveSafetensors(b.hasHead ? b.model.stateDict() : withoutHead(b.model), file, metaOf(b.arch, b.archOptions, { ...b.input, size }, { 'adafilter.source': src }));
      out(`${src} → ${file}: ${b.arch} weights${b.hasHead ? '' : ' (no classifier)'}`);
    }
    return 0;
  } finally {
    b.model.dispose();
  }
}


export const modelsCommand: Command = {
  name: 'models',
  summary: 'list, inspect, import (ONNX, TF.js, nsfwjs, torchvision/timm) and export (ONNX, safetensors, a web page) models',
  usage,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === 'list') return list(rest);
    if (sub === 'inspect') return inspect(rest);
    if (sub === 'import') return importCmd(rest);
    if (sub === 'export') return exportCmd(rest);
    throw new InputError(`models: ${sub === undefined ? 'expected a subcommand' : `unknown subcommand '${sub}'`} (list, inspect, import, export)`);
  },
};
