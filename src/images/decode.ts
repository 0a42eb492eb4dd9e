// The I/O half of preprocessing: encoded JPEG, PNG or WebP bytes decoded and resized by
// sharp (libvips), then handed to the pure tensor code. EXIF orientation is applied and
// alpha dropped, as OpenCV's imread does, so a camera frame reads the way it is shown.

import type { OutputInfo, default as SharpFactory } from 'sharp';
import { DataError } from '../common/index.js';
import { placement, frameToTensor } from './tensor.js';
import type { PreprocessSpec } from './spec.js';

/** File endings read as images; anything else in a data folder is left alone. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'] as const;

/** Largest image decoded, in pixels (a 64-megapixel frame); larger ones are refused unread. */
const MAX_INPUT_PIXELS = 64 * 2 ** 20;

let loaded: typeof SharpFactory | undefined;

/**
 * sharp, loaded on first use: a model fed .npy files or tensors never needs libvips, so a
 * device whose sharp binary is missing or broken still calibrates and serves tensors.
 */
async function sharp(): Promise<typeof SharpFactory> {
  if (!loaded) {
    loaded = (await import('sharp')).default;
    // Each decode is one libvips pipeline; its own thread pool would compete with inference.
    loaded.concurrency(1);
  }
  return loaded;
}

export function isImageFile(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => lower.endsWith(e));
}

/** Decodes one encoded image into the spec's tensor; `what` names it in errors. */
export async function imageToTensor(bytes: Uint8Array, spec: PreprocessSpec, what: string): Promise<Float32Array> {
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await (await sharp())(bytes, { limitInputPixels: MAX_INPUT_PIXELS })
      .autoOrient()
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new DataError(`${what} is not a readable JPEG, PNG or WebP image (${firstLine(err)})`, { value: what, hint: 'send the encoded file bytes as they are' });
  }
  const { width, height, channels } = decoded.info;
  const rgb = channels === 3 ? decoded.data : expandToRgb(decoded.data, channels);
  const p = placement(spec, width, height);
  const resized = p.width === width && p.height === height ? rgb : await resize(rgb, width, height, p.width, p.height);
  return frameToTensor(resized, p, spec);
}

/** Bilinear, as OpenCV's default INTER_LINEAR that the presets' models were fed with. */
async function resize(rgb: Buffer, width: number, height: number, toWidth: number, toHeight: number): Promise<Buffer> {
  return (await sharp())(rgb, { raw: { width, height, channels: 3 } })
    .resize(toWidth, toHeight, { fit: 'fill', kernel: 'linear' })
    .raw({ depth: 'uchar' })
    .toBuffer();
}

/** libvips keeps one-band images one band even when asked for sRGB; repeat it. */
function expandToRgb(data: Buffer, channels: number): Buffer {
  const pixels = data.length / channels;
  const out = Buffer.alloc(pixels * 3);
  for (let i = 0; i < pixels; i++) out.fill(data[i * channels], i * 3, i * 3 + 3);
  return out;
}

/** Width and height from the header alone (of a file path or bytes), or a DataError naming it. */
export async function imageSize(image: string | Uint8Array, what: string): Promise<{ width: number; height: number }> {
  try {
    const m = await (await sharp())(image, { limitInputPixels: MAX_INPUT_PIXELS }).metadata();
    if (!m.width || !m.height || !['jpeg', 'png', 'webp'].includes(m.format ?? '')) throw new Error(`format ${m.format ?? 'unknown'}`);
    return { width: m.width, height: m.height };
  } catch (err) {
    throw new DataError(`${what} is not a readable JPEG, PNG or WebP image (${firstLine(err)})`, { value: what, hint: 'remove or replace the file' });
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}
