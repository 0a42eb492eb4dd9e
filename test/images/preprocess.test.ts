// Decode → preprocess against tensors worked out by hand, for tiny PNGs written here, one
// case per resize mode, colour order and layout.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { imageToTensor, placement, preprocessFromArgument, preprocessSpec, tensorDims, type PreprocessInput } from '../../src/images/index.js';
import { DataError, OptionError } from '../../src/common/index.js';
import { thrown } from '../helpers/thrown.js';

/** A lossless PNG of `width`×`height` RGB pixels given row by row. */
async function png(width: number, height: number, rgb: number[][]): Promise<Buffer> {
  return sharp(Buffer.from(rgb.flat()), { raw: { width, height, channels: 3 } }).png().toBuffer();
}

async function tensor(image: Buffer, spec: PreprocessInput): Promise<number[]> {
  return Array.from(await imageToTensor(image, preprocessSpec(spec), 'test image'));
}

const f32 = (xs: number[]) => Array.from(Float32Array.from(xs));

describe('decode → preprocess, checked by hand', () => {
  // 3×2 pixels: red, green, blue / white, black, grey 100.
  const pixels = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0], [100, 100, 100]];

  it('stretch at the same size, RGB, NCHW, per-channel mean and std', async () => {
    const t = await tensor(await png(3, 2, pixels), { size: [3, 2], color: 'rgb', scale: 1 / 255, mean: [0.5, 0, 0], std: [0.5, 1, 2] });
    // R plane: (v/255 - 0.5)/0.5; G plane: v/255; B plane: v/255/2.
    expect(t).toEqual(f32([
      1, -1, -1, 1, -1, (100 / 255 - 0.5) / 0.5,
      0, 1, 0, 1, 0, 100 / 255,
      0, 0, 0.5, 0.5, 0, 50 / 255,
    ]));
  });

  it('BGR, NHWC: channels swapped and interleaved', async () => {
    const t = await tensor(await png(3, 2, pixels), { size: [3, 2], color: 'bgr', scale: 1, layout: 'nhwc' });
    expect(t).toEqual([0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 0, 0, 0, 100, 100, 100]);
  });

  it('gray: BT.601 luma, rounded to 8 bits', async () => {
    const t = await tensor(await png(3, 2, pixels), { size: [3, 2], color: 'gray', scale: 1 });
    // 0.299·255 = 76.2 → 76; 0.587·255 = 149.7 → 150; 0.114·255 = 29.1 → 29.
    expect(t).toEqual([76, 150, 29, 255, 0, 100]);
  });

  it('stretch with scaling: a solid 5×3 image stays solid at 2×2', async () => {
    const solid = Array.from({ length: 15 }, () => [10, 20, 30]);
    const t = await tensor(await png(5, 3, solid), { size: [2, 2], color: 'rgb', scale: 1 });
    expect(t).toEqual([10, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30]);
  });

  it('letterbox: an 8×4 image scaled to 4×2, centred in 4×4, rows above and below padded', async () => {
    const solid = Array.from({ length: 32 }, () => [200, 100, 50]);
    const image = await png(8, 4, solid);
    expect(placement(preprocessSpec({ size: [4, 4], resize: 'letterbox' }), 8, 4)).toEqual({ width: 4, height: 2, left: 0, top: 1 });
    const t = await tensor(image, { size: [4, 4], resize: 'letterbox', pad: 114, color: 'gray', scale: 1 });
    // luma(200,100,50) = (59800 + 58700 + 5700 + 500) / 1000 → 124.
    expect(t).toEqual([114, 114, 114, 114, 124, 124, 124, 124, 124, 124, 124, 124, 114, 114, 114, 114]);
    const corner = await tensor(image, { size: [4, 4], resize: 'letterbox', anchor: 'top-left', pad: 127.5, color: 'gray', scale: 1 / 255, mean: [0.5], std: [0.5] });
    // The PaddleOCR padding: 127.5 normalises to exactly 0.
    const v = (124 / 255 - 0.5) / 0.5;
    expect(corner).toEqual(f32([v, v, v, v, v, v, v, v, 0, 0, 0, 0, 0, 0, 0, 0]));
  });

  it('center-crop: a 6×4 image keeps its middle 4 columns at 4×4', async () => {
    // Column c is grey 40·c.
    const cols = Array.from({ length: 24 }, (_, i) => { const g = 40 * (i % 6); return [g, g, g]; });
    const t = await tensor(await png(6, 4, cols), { size: [4, 4], resize: 'center-crop', color: 'gray', scale: 1 });
    expect(t).toEqual([40, 80, 120, 160, 40, 80, 120, 160, 40, 80, 120, 160, 40, 80, 120, 160]);
  });

  it('a grey PNG and an alpha PNG read as their colour', async () => {
    const grey = await sharp(Buffer.from([0, 128, 255, 7]), { raw: { width: 2, height: 2, channels: 1 } }).png().toBuffer();
    expect(await tensor(grey, { size: [2, 2], color: 'rgb', scale: 1, layout: 'nhwc' })).toEqual([0, 0, 0, 128, 128, 128, 255, 255, 255, 7, 7, 7]);
    const rgba = await sharp(Buffer.from([9, 8, 7, 0]), { raw: { width: 1, height: 1, channels: 4 } }).png().toBuffer();
    expect(await tensor(rgba, { size: [1, 1], color: 'rgb', scale: 1 })).toEqual([9, 8, 7]);
  });

  it('bytes that are not an image are one DataError naming them', async () => {
    const err = await imageToTensor(Buffer.from('not an image'), preprocessSpec('mnist'), 'frame.png').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(String((err as Error).message)).toMatch(/^frame\.png is not a readable JPEG, PNG or WebP image/);
  });
});

describe('preprocess specs', () => {
  it('presets give the tensor shapes their models take', () => {
    expect(tensorDims(preprocessSpec('mnist'))).toEqual([1, 28, 28]);
    expect(tensorDims(preprocessSpec('imagenet'))).toEqual([3, 224, 224]);
    expect(tensorDims(preprocessSpec('paddleocr-cls'))).toEqual([3, 48, 192]);
    expect(tensorDims(preprocessSpec('paddleocr-rec'))).toEqual([3, 48, 320]);
    expect(tensorDims(preprocessSpec('yolo'))).toEqual([3, 640, 640]);
  });

  it('--preprocess takes inline JSON and refuses unknown presets and bad fields in one line', () => {
    expect(preprocessFromArgument('{"size":[4,2],"layout":"nhwc"}').layout).toBe('nhwc');
    expect(thrown(OptionError, () => preprocessFromArgument('mnsit')).message).toBe("--preprocess 'mnsit' is not a preset");
    expect(thrown(OptionError, () => preprocessFromArgument('{"size":[4,2],"color":"bgr","mean":[1,2]}')).message).toBe("--preprocess.mean needs 1 or 3 values for color 'bgr'");
  });
});
