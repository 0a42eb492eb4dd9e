// The pure half of preprocessing: where a decoded image lands in the output frame (scale,
// padding, cropping), and the frame's pixels to a normalised float tensor. No I/O, so every
// number here can be checked against a tensor worked out by hand.

import { channelCount, type PreprocessSpec } from './spec.js';

/** How an image of a given size is placed in the spec's frame. */
export interface Placement {
  /** Size the image is resized to before it is placed. */
  width: number;
  height: number;
  /** Frame position of the resized image's top-left pixel: positive pads, negative crops. */
  left: number;
  top: number;
}

/** Where an image of `width`×`height` pixels goes in the spec's output frame. */
export function placement(spec: PreprocessSpec, width: number, height: number): Placement {
  const [fw, fh] = spec.size;
  if (spec.resize === 'stretch') return { width: fw, height: fh, left: 0, top: 0 };
  if (spec.resize === 'letterbox') {
    const s = Math.min(fw / width, fh / height);
    const w = clamp(Math.round(width * s), 1, fw);
    const h = clamp(Math.round(height * s), 1, fh);
    const centred = spec.anchor === 'center';
    return { width: w, height: h, left: centred ? Math.floor((fw - w) / 2) : 0, top: centred ? Math.floor((fh - h) / 2) : 0 };
  }
  // center-crop: the kept fraction of the short side covers the frame.
  const s = Math.max(fw / width, fh / height) / spec.crop;
  const w = Math.max(fw, Math.round(width * s));
  const h = Math.max(fh, Math.round(height * s));
  return { width: w, height: h, left: -Math.floor((w - fw) / 2), top: -Math.floor((h - fh) / 2) };
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

/** 8-bit luma from sRGB with the BT.601 weights OpenCV and Pillow use, rounded; grey stays exact. */
export function luma(r: number, g: number, b: number): number {
  return Math.floor((299 * r + 587 * g + 114 * b + 500) / 1000);
}

/**
 * The tensor for one image: `rgb` holds `p.width`×`p.height` interleaved RGB bytes, already
 * resized to the placement's size. Frame pixels outside the image get `spec.pad` in every
 * channel; each value is (pixel × scale − mean[c]) / std[c], as float32.
 */
export function frameToTensor(rgb: Uint8Array, p: Placement, spec: PreprocessSpec): Float32Array {
  if (rgb.length !== p.width * p.height * 3) throw new RangeError(`expected ${p.width}×${p.height}×3 bytes, got ${rgb.length}`);
  const [fw, fh] = spec.size;
  const channels = channelCount(spec);
  const out = new Float32Array(fw * fh * channels);
  const mean = (c: number) => spec.mean[spec.mean.length === 1 ? 0 : c];
  const std = (c: number) => spec.std[spec.std.length === 1 ? 0 : c];
  const normalise = (v: number, c: number) => (v * spec.scale - mean(c)) / std(c);
  const padded = Array.from({ length: channels }, (_, c) => normalise(spec.pad, c));
  // Source channel of each output channel (RGB bytes in).
  const order = spec.color === 'bgr' ? [2, 1, 0] : [0, 1, 2];
  const nchw = spec.layout === 'nchw';
  const plane = fw * fh;
  for (let y = 0; y < fh; y++) {
    const sy = y - p.top;
    for (let x = 0; x < fw; x++) {
      const sx = x - p.left;
      const inside = sx >= 0 && sx < p.width && sy >= 0 && sy < p.height;
      const src = (sy * p.width + sx) * 3;
      const pixel = y * fw + x;
      for (let c = 0; c < channels; c++) {
        let v: number;
        if (!inside) v = padded[c];
        else if (channels === 1) v = normalise(luma(rgb[src], rgb[src + 1], rgb[src + 2]), 0);
        else v = normalise(rgb[src + order[c]], c);
        out[nchw ? c * plane + pixel : pixel * channels + c] = v;
      }
    }
  }
  return out;
}
