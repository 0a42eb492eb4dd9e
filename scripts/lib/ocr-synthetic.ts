// Synthetic text-line crops for the PaddleOCR direction classifier (0° vs 180°).
//
// No real text images ship with the project, so calibration and evaluation of the
// classifier use generated ones that share the statistics that matter to its activations:
// a light, slightly tinted and noisy background; a row of dark glyph-like shapes (strokes,
// dots, blobs) on a baseline, with more ascenders than descenders so that the line is
// top-heavy; a crop width that varies, right-padded to the model's width the way PaddleOCR
// pads (zeros after normalisation). Some crops are rotated 180° before padding, which is
// what the classifier is trained to detect. Pixels are normalised to [-1, 1] like
// PaddleOCR's `(x / 255 - 0.5) / 0.5`.

export interface TextLineOptions {
  count: number;
  seed?: number;
  /** Model input height (default 48). */
  height?: number;
  /** Model input width (default 192). */
  width?: number;
  /** Share of crops rotated by 180° (default 0.5). */
  rotatedFraction?: number;
}

export interface TextLineSet {
  /** NCHW float32 in [-1, 1], N × 3 × height × width. */
  data: Float32Array;
  dims: [number, number, number, number];
  /** 0: upright, 1: rotated 180°, one per image (PaddleOCR's label order '0', '180'). */
  labels: Uint8Array;
}

/** A small seeded generator (xorshift-multiply), so every run draws the same images. */
export function rng(seed: number): () => number {
  let s = (seed ^ 0x9e3779b9) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (Math.imul(s, 0x2545f491) >>> 8) / 0x1000000;
  };
}

/** Ink coverage of a segment of half-thickness r at pixel centre (px, py), anti-aliased. */
function segmentCoverage(px: number, py: number, x0: number, y0: number, x1: number, y1: number, r: number): number {
  const dx = x1 - x0;
  const dy = y1 - y0;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - x0) * dx + (py - y0) * dy) / len2));
  const d = Math.hypot(px - (x0 + t * dx), py - (y0 + t * dy));
  return Math.max(0, Math.min(1, r + 0.5 - d));
}

function drawSegment(ink: Float32Array, w: number, h: number, x0: number, y0: number, x1: number, y1: number, r: number): void {
  const xa = Math.max(0, Math.floor(Math.min(x0, x1) - r - 1));
  const xb = Math.min(w - 1, Math.ceil(Math.max(x0, x1) + r + 1));
  const ya = Math.max(0, Math.floor(Math.min(y0, y1) - r - 1));
  const yb = Math.min(h - 1, Math.ceil(Math.max(y0, y1) + r + 1));
  for (let y = ya; y <= yb; y++) {
    for (let x = xa; x <= xb; x++) {
      const c = segmentCoverage(x + 0.5, y + 0.5, x0, y0, x1, y1, r);
      if (c > ink[y * w + x]) ink[y * w + x] = c;
    }
  }
}

/**
 * One glyph in the box [gx, gx + gw) on a baseline: a few strokes in the x-height band,
 * sometimes an ascender or a descender, sometimes a dot or a filled blob.
 */
function drawGlyph(ink: Float32Array, w: number, h: number, gx: number, gw: number, baseline: number, xHeight: number, r: () => number): void {
  const thick = 0.8 + r() * 1.2;
  const top = baseline - xHeight;
  const px = () => gx + r() * gw;
  const py = () => top + r() * xHeight;
  const strokes = 2 + Math.floor(r() * 3);
  for (let s = 0; s < strokes; s++) {
    const kind = r();
    if (kind < 0.35) {
      const y = py();
      drawSegment(ink, w, h, gx + r() * gw * 0.3, y, gx + gw * (0.7 + r() * 0.3), y + (r() - 0.5) * 2, thick);
    } else if (kind < 0.7) {
      const x = px();
      drawSegment(ink, w, h, x, top + r() * xHeight * 0.3, x + (r() - 0.5) * 2, baseline - r() * xHeight * 0.2, thick);
    } else {
      drawSegment(ink, w, h, px(), py(), px(), py(), thick);
    }
  }
  if (r() < 0.35) {
    // Ascender: the top-heavy feature that tells upright text from upside-down.
    const x = gx + r() * gw;
    drawSegment(ink, w, h, x, top - xHeight * (0.5 + r() * 0.4), x, baseline, thick);
  } else if (r() < 0.12) {
    const x = gx + r() * gw;
    drawSegment(ink, w, h, x, top + xHeight * 0.3, x, baseline + xHeight * (0.3 + r() * 0.3), thick);
  }
  if (r() < 0.1) {
    // A dot above the x-height (i, j, punctuation) or a filled blob.
    const x = gx + r() * gw;
    drawSegment(ink, w, h, x, top - 5, x, top - 4, thick + 0.5);
  } else if (r() < 0.05) {
    const cx = gx + gw / 2;
    const cy = top + xHeight / 2;
    drawSegment(ink, w, h, cx - gw * 0.25, cy, cx + gw * 0.25, cy, xHeight * 0.3);
  }
}

/** Generates `count` text-line images, deterministic for a given seed. */
export function syntheticTextLines(opts: TextLineOptions): TextLineSet {
  const n = opts.count;
  const H = opts.height ?? 48;
  const W = opts.width ?? 192;
  const rotated = opts.rotatedFraction ?? 0.5;
  const r = rng(opts.seed ?? 1);
  const gauss = () => {
    const u = Math.max(1e-12, r());
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  };
  const plane = H * W;
  const data = new Float32Array(n * 3 * plane);
  const labels = new Uint8Array(n);
  const ink = new Float32Array(plane);
  const crop = new Float32Array(3 * plane);
  for (let i = 0; i < n; i++) {
    // Crop width after resizing to height H: text lines of aspect 2..4, some filling W.
    const cw = Math.min(W, Math.round(H * (2 + r() * 2.5)));
    ink.fill(0);
    const xHeight = H * (0.25 + r() * 0.15);
    const baseline = H * (0.62 + r() * 0.12);
    let x = 2 + r() * 6;
    while (x < cw - 6) {
      const gw = xHeight * (0.6 + r() * 0.7);
      if (x + gw > cw - 2) break;
      drawGlyph(ink, cw, H, x, gw, baseline, xHeight, r);
      x += gw + 1 + r() * 4 + (r() < 0.12 ? xHeight * 0.6 : 0); // letter and word spacing
    }
    // Colours (0..255): light tinted paper with a horizontal gradient; dark ink.
    const bg = [200 + r() * 50, 200 + r() * 50, 195 + r() * 50];
    const fg = [r() * 80, r() * 80, r() * 80];
    const grad = (r() - 0.5) * 40;
    const noise = 3 + r() * 9;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < H; y++) {
        for (let xx = 0; xx < cw; xx++) {
          const a = ink[y * cw + xx];
          const paper = bg[c] + grad * (xx / cw - 0.5);
          const v = paper * (1 - a) + fg[c] * a + noise * gauss();
          crop[c * plane + y * cw + xx] = Math.max(0, Math.min(255, v));
        }
      }
    }
    const flip = r() < rotated;
    labels[i] = flip ? 1 : 0;
    const base = i * 3 * plane;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < H; y++) {
        for (let xx = 0; xx < W; xx++) {
          let v = 0; // right padding: zero after normalisation
          if (xx < cw) {
            const sy = flip ? H - 1 - y : y;
            const sx = flip ? cw - 1 - xx : xx;
            v = crop[c * plane + sy * cw + sx] / 127.5 - 1;
          }
          data[base + c * plane + y * W + xx] = v;
        }
      }
    }
  }
  return { data, dims: [n, 3, H, W], labels };
}
