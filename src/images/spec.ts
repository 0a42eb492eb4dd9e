// What turns an image into a model's input tensor: size, resize mode, colour order,
// normalisation and layout, checked by zod, with presets for the models calibd is used with.
// A spec comes from a preset name, a JSON or YAML file, or inline JSON, on the CLI and in
// the config alike.

import { existsSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { OptionError } from '../common/index.js';
import { printable } from '../common/errors.js';

export const RESIZE_MODES = ['stretch', 'letterbox', 'center-crop'] as const;
export const COLOR_ORDERS = ['rgb', 'bgr', 'gray'] as const;
export const LAYOUTS = ['nchw', 'nhwc'] as const;

const perChannel = z.array(z.number()).min(1).max(3);

export const preprocessSchema = z
  .strictObject({
    /** Output width and height in pixels. */
    size: z.tuple([z.int().min(1).max(8192), z.int().min(1).max(8192)]),
    /**
     * stretch: both sides to `size`, aspect ratio not kept. letterbox: scaled to fit inside
     * `size`, the rest filled with `pad`. center-crop: scaled so `size` is covered by the
     * `crop` fraction of the short side, then the middle kept.
     */
    resize: z.enum(RESIZE_MODES).default('stretch'),
    /** letterbox fill, in pixel units (0–255) before normalisation. */
    pad: z.number().min(0).max(255).default(0),
    /** Where a letterboxed image sits: centred, or in the top-left corner with padding right and below. */
    anchor: z.enum(['center', 'top-left']).default('center'),
    /** center-crop: the fraction of the scaled short side that is kept (0.875: 256 → 224). */
    crop: z.number().gt(0).max(1).default(1),
    color: z.enum(COLOR_ORDERS).default('rgb'),
    /** value = (pixel × scale − mean[c]) / std[c]; one number for every channel or one per channel. */
    scale: z.number().positive().default(1 / 255),
    mean: perChannel.default([0]),
    std: perChannel.refine((s) => s.every((v) => v > 0), { message: 'must be positive' }).default([1]),
    layout: z.enum(LAYOUTS).default('nchw'),
  })
  .superRefine((s, ctx) => {
    const channels = s.color === 'gray' ? 1 : 3;
    for (const key of ['mean', 'std'] as const) {
      if (s[key].length !== 1 && s[key].length !== channels) {
        ctx.addIssue({ code: 'custom', path: [key], input: s[key], message: `needs 1 or ${channels} values for color '${s.color}'` });
      }
    }
  });

export type PreprocessSpec = z.output<typeof preprocessSchema>;
export type PreprocessInput = z.input<typeof preprocessSchema>;

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

/**
 * Presets, as the models' own inference code prepares images (summarised here, not copied):
 *
 * - imagenet: torchvision's evaluation transform, short side to 256 then the middle 224×224,
 *   RGB, /255, then the ImageNet channel mean and std.
 * - paddleocr-det (DBNet): PaddleOCR reads images with OpenCV, so channels stay BGR, yet it
 *   applies the ImageNet mean/std lists (written in RGB order) to them as they are; scale
 *   1/255, CHW. Its own resize keeps the aspect ratio, caps the long side at 960 and rounds
 *   each side to a multiple of 32; a static calibration set needs one size, so the preset
 *   stretches to 960×960 — set `size` to your camera's aspect (multiples of 32).
 * - paddleocr-cls (text direction) and paddleocr-rec (text line): BGR, height 48, width
 *   192 (cls) or 320 (rec, PP-OCRv3/v4); the line is scaled to height 48 keeping its aspect
 *   (width capped), normalised as (x/255 − 0.5)/0.5 and padded on the right with zeros
 *   after normalisation, i.e. pixel value 127.5 here. PaddleOCR squashes a line wider than
 *   the cap to full width; letterbox instead keeps its aspect and pads below.
 * - yolo (Ultralytics): letterbox to 640×640, centred, grey 114 padding, RGB, /255.
 * - mnist: 28×28 grey, /255 (the bundled model's training data are in [0, 1]).
 */
export const PRESETS: Record<string, PreprocessInput> = {
  imagenet: { size: [224, 224], resize: 'center-crop', crop: 0.875, color: 'rgb', mean: IMAGENET_MEAN, std: IMAGENET_STD },
  'paddleocr-det': { size: [960, 960], resize: 'stretch', color: 'bgr', mean: IMAGENET_MEAN, std: IMAGENET_STD },
  'paddleocr-cls': { size: [192, 48], resize: 'letterbox', anchor: 'top-left', pad: 127.5, color: 'bgr', mean: [0.5], std: [0.5] },
  'paddleocr-rec': { size: [320, 48], resize: 'letterbox', anchor: 'top-left', pad: 127.5, color: 'bgr', mean: [0.5], std: [0.5] },
  yolo: { size: [640, 640], resize: 'letterbox', pad: 114, color: 'rgb' },
  mnist: { size: [28, 28], resize: 'stretch', color: 'gray' },
};

/** A preset, or the spec an object describes, checked; `where` names it in errors. */
export function preprocessSpec(value: string | PreprocessInput, where = 'preprocess'): PreprocessSpec {
  if (typeof value === 'string') {
    const preset = PRESETS[value];
    if (!preset) {
      throw new OptionError(`${where} '${printable(value)}' is not a preset`, { value, hint: `presets are: ${Object.keys(PRESETS).join(', ')}; or give an object with size, resize, color, scale, mean, std, layout` });
    }
    return preprocessSchema.parse(preset);
  }
  const parsed = preprocessSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.path.length ? `.${issue.path.join('.')}` : '';
    throw new OptionError(`${where}${path} ${issue.message}`, { value, hint: 'fields: size [w,h], resize stretch|letterbox|center-crop, pad, anchor, crop, color rgb|bgr|gray, scale, mean, std, layout nchw|nhwc' });
  }
  return parsed.data;
}

/** `--preprocess PRESET|FILE|JSON`: a preset name, a .json/.yaml file, or inline JSON. */
export function preprocessFromArgument(text: string): PreprocessSpec {
  const where = `--preprocess`;
  if (text.trimStart().startsWith('{')) return preprocessSpec(parseJson(text, where), where);
  if (PRESETS[text]) return preprocessSpec(text, where);
  if (existsSync(text)) {
    const body = readFileSync(text, 'utf8');
    const ext = extname(text).toLowerCase();
    const value = ext === '.yaml' || ext === '.yml' ? parseYaml(body) : parseJson(body, `${where} ${text}`);
    return preprocessSpec(value as PreprocessInput, `${where} ${text}`);
  }
  return preprocessSpec(text, where);
}

function parseJson(text: string, where: string): PreprocessInput {
  try {
    return JSON.parse(text) as PreprocessInput;
  } catch (err) {
    throw new OptionError(`${where} is not valid JSON (${(err as Error).message})`, { value: text, hint: 'e.g. --preprocess \'{"size":[224,224],"color":"rgb"}\' or a preset name' });
  }
}

/** Channels the spec produces. */
export function channelCount(spec: PreprocessSpec): number {
  return spec.color === 'gray' ? 1 : 3;
}

/** Per-sample dims of the tensor the spec produces: [C,H,W] or [H,W,C]. */
export function tensorDims(spec: PreprocessSpec): number[] {
  const [w, h] = spec.size;
  const c = channelCount(spec);
  return spec.layout === 'nchw' ? [c, h, w] : [h, w, c];
}

/**
 * The interval every value of the spec's tensors lies in: pixels span 0–255 before
 * normalisation (the letterbox pad included), so per channel (0 − mean) / std to
 * (255 × scale − mean) / std. This is the input contract data-free calibration needs.
 */
export function preprocessRange(spec: PreprocessSpec): { min: number; max: number } {
  const channels = channelCount(spec);
  let min = Infinity;
  let max = -Infinity;
  for (let c = 0; c < channels; c++) {
    const mean = spec.mean.length === 1 ? spec.mean[0] : spec.mean[c];
    const std = spec.std.length === 1 ? spec.std[0] : spec.std[c];
    min = Math.min(min, (0 - mean) / std);
    max = Math.max(max, (255 * spec.scale - mean) / std);
  }
  return { min, max };
}
