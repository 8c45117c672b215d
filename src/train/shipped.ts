/**
 * The pretrained backbones that ship in weights/: a name for `--backbone`, the file, and the
 * command that made it (each file's .md model card beside it has the exact run). `default` is the
 * one a user gets without asking; the others stay so that results published on them reproduce.
 */
import * as path from 'node:path';

/** The package root (this file is dist/src/train/shipped.js). */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');

export interface ShippedBackbone {
  name: string;
  file: string;
  /** How to rebuild the file if it is missing. */
  build: string;
  summary: string;
}

/** The glyph scripts the transfer benchmark uses as targets; a pretraining source leaves them out. */
export const TARGET_SCRIPTS = ['Armenian', 'Georgian', 'Devanagari'];

/** Quick Draw 0-244 plus 8 letters of every script but the targets and CJK, `samples` renders each. */
const doodlesAndGlyphs = (samples: number) =>
  `quickdraw:0-244+glyphs:scripts=all;exclude=${TARGET_SCRIPTS.join(',')};max=8;samples=${samples};size=28`;

/**
 * The default's source: 60 renders per letter — fewer than the 100 of doodles-glyphs-resnet20, so
 * doodles are 27% of the images instead of 18% and an epoch costs 40% less (issue 15's probe: +3.4
 * points of linear-probe accuracy for that change with 10 epochs instead of 5, docs/results.md).
 */
export const DEFAULT_SOURCE = doodlesAndGlyphs(60);

export const SHIPPED: ShippedBackbone[] = [
  {
    name: 'default', file: path.join(PACKAGE_ROOT, 'weights', 'default.safetensors'),
    build: `adafilter pretrain --arch resnet20 --data '${DEFAULT_SOURCE}' --epochs 10 --batch 64 --lr 0.05 --threads 2 --workers 1 --seed 0 --precision bf16 --out weights/default.safetensors --run runs/pretrain-default`,
    summary: 'resnet20 pretrained 10 epochs on Quick Draw 0-244 and 8 letters of each of 137 scripts (1341 classes, 90,260 images), bf16 autocast',
  },
  {
    name: 'doodles-glyphs-resnet20', file: path.join(PACKAGE_ROOT, 'weights', 'doodles-glyphs-resnet20.safetensors'),
    build: `adafilter pretrain --arch resnet20 --data '${doodlesAndGlyphs(100)}' --epochs 5 --batch 64 --lr 0.05 --threads 2 --workers 1 --seed 0 --out weights/doodles-glyphs-resnet20.safetensors --run runs/pretrain-doodles-glyphs-resnet20`,
    summary: 'resnet20 pretrained 5 epochs on Quick Draw 0-244 and 8 letters of each of 137 scripts, 100 renders each (the default on 2026-12-01 and 02; the backbones profile\'s `default` rows of 2026-12-01 use it)',
  },
  {
    name: 'doodles-resnet20', file: path.join(PACKAGE_ROOT, 'weights', 'doodles-resnet20.safetensors'),
    build: 'adafilter pretrain --arch resnet20 --data quickdraw:0-244 --epochs 12 --batch 64 --lr 0.05 --threads 1 --seed 0 --out weights/doodles-resnet20.safetensors',
    summary: 'resnet20 pretrained on Quick Draw 0-244 only (the default until 2026-12-01; the results published before then use it)',
  },
];

export function shippedBackbone(name: string): ShippedBackbone | undefined {
  return SHIPPED.find((s) => s.name === name);
}

export const DEFAULT_WEIGHTS = shippedBackbone('default')!.file;
