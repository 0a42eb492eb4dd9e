// npx tsx scripts/arm64/compare.ts --name NAME --profile P --ref X64.npy --arm ARM64.npy \
//     [--ref-profile X64.json --arm-profile ARM64.json] [--min-agreement 0.98] [--min-sqnr 30] [--target-sqnr 30] [--table FILE]
//
// One row of the summary table, and a non-zero exit when a check fails. --ref holds the
// reference outputs: x64 for the cross-platform rows, FP32 on arm64 for the --auto row.
//  - the same INT8 model (calibrated on arm64) run on x64 (--ref) and on arm64 (--arm): top-1
//    agreement of the outputs over the samples, and the SQNR of the arm64 outputs against
//    the x64 ones (10·log10(Σ ref² / Σ (arm − ref)²); +∞ when bit-identical);
//  - the calibration records (`calibd inspect --json`) of the model calibrated on x64 and of
//    the one calibrated on arm64: every activation tensor, min and max within float tolerance
//    (|a − b| ≤ 1e-5 · max(1, |a|, |b|)), and the same tensor set.
// The row is appended to --table (JSON lines) for the summary.
import { appendFileSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { readNpy } from '../../src/common/index.js';

const { values: o } = parseArgs({
  options: {
    name: { type: 'string' }, profile: { type: 'string' },
    ref: { type: 'string' }, arm: { type: 'string' },
    'ref-profile': { type: 'string' }, 'arm-profile': { type: 'string' },
    'min-agreement': { type: 'string', default: '0.98' }, 'min-sqnr': { type: 'string', default: '30' }, 'target-sqnr': { type: 'string' },
    table: { type: 'string' },
  },
});
for (const k of ['name', 'profile', 'ref', 'arm'] as const) {
  if (!o[k]) {
    console.error(`compare.ts: --${k} is required`);
    process.exit(2);
  }
}
const RANGE_TOL = 1e-5;

const ref = readNpy(o.ref!);
const arm = readNpy(o.arm!);
if (ref.shape.join('x') !== arm.shape.join('x')) {
  console.error(`compare.ts: output shapes differ: x64 [${ref.shape}] vs arm64 [${arm.shape}]`);
  process.exit(1);
}
const n = ref.shape[0];
const per = ref.data.length / n;
let agree = 0;
let signal = 0;
let noise = 0;
let maxAbs = 0;
const argmax = (d: ArrayLike<number | bigint>, at: number): number => {
  let best = 0;
  for (let j = 1; j < per; j++) if (Number(d[at + j]) > Number(d[at + best])) best = j;
  return best;
};
for (let i = 0; i < n; i++) {
  if (argmax(ref.data, i * per) === argmax(arm.data, i * per)) agree++;
  for (let j = i * per; j < (i + 1) * per; j++) {
    const r = Number(ref.data[j]);
    const e = Number(arm.data[j]) - r;
    signal += r * r;
    noise += e * e;
    maxAbs = Math.max(maxAbs, Math.abs(e));
  }
}
const agreement = agree / n;
const sqnr = noise === 0 ? Infinity : 10 * Math.log10(signal / noise);

type Ranges = Record<string, { min: number; max: number }>;
const tensors = (path: string): Ranges => (JSON.parse(readFileSync(path, 'utf8')) as { tensors: Ranges }).tensors;
// Without the two calibration records (the --auto check) there are no ranges to compare.
const withRanges = Boolean(o['ref-profile'] && o['arm-profile']);
const rx = withRanges ? tensors(o['ref-profile']!) : {};
const ra = withRanges ? tensors(o['arm-profile']!) : {};
const names = new Set([...Object.keys(rx), ...Object.keys(ra)]);
let rangeMismatch = 0;
let rangeMaxRel = 0;
const mismatches: string[] = [];
for (const t of names) {
  const a = ra[t];
  const b = rx[t];
  if (!a || !b) {
    rangeMismatch++;
    mismatches.push(`${t}: only in the ${a ? 'arm64' : 'x64'} calibration`);
    continue;
  }
  for (const k of ['min', 'max'] as const) {
    const rel = Math.abs(a[k] - b[k]) / Math.max(1, Math.abs(a[k]), Math.abs(b[k]));
    rangeMaxRel = Math.max(rangeMaxRel, rel);
    if (!(rel <= RANGE_TOL)) {
      rangeMismatch++;
      mismatches.push(`${t}.${k}: arm64 ${a[k]} vs x64 ${b[k]}`);
    }
  }
}

const minAgreement = Number(o['min-agreement']);
const minSqnr = Number(o['min-sqnr']);
// The issue's figure, reported beside the floor this check enforces when the two differ.
const targetSqnr = Number(o['target-sqnr'] ?? minSqnr);
const failures: string[] = [];
if (agreement < minAgreement) failures.push(`top-1 agreement ${(agreement * 100).toFixed(1)}% < ${minAgreement * 100}%`);
if (!(sqnr >= minSqnr)) failures.push(`SQNR ${sqnr.toFixed(1)} dB < ${minSqnr} dB`);
if (rangeMismatch > 0) failures.push(`${rangeMismatch} range(s) differ: ${mismatches.slice(0, 3).join('; ')}`);

const row = {
  profile: o.profile, model: o.name, samples: n,
  agreement: `${agree}/${n} (${(agreement * 100).toFixed(1)}%)`,
  sqnrDb: Number.isFinite(sqnr) ? sqnr.toFixed(1) : 'inf',
  maxAbsDiff: maxAbs === 0 ? '0 (bit-identical)' : maxAbs.toPrecision(3),
  floors: `≥${(minAgreement * 100).toFixed(0)}%, ≥${minSqnr} dB`,
  target: sqnr >= targetSqnr ? `≥${targetSqnr} dB: met` : `≥${targetSqnr} dB: NOT met (${sqnr.toFixed(1)})`,
  ranges: !withRanges ? 'n/a' : `${names.size} tensors, ${rangeMismatch ? `${rangeMismatch} differ` : 'all equal'}, max rel diff ${rangeMaxRel.toExponential(1)}`,
  result: failures.length ? 'FAIL' : 'ok',
};
if (o.table) appendFileSync(o.table, JSON.stringify(row) + '\n');
console.log(`${o.profile} ${o.name}: top-1 agreement ${row.agreement}, SQNR ${row.sqnrDb} dB (max |Δ| ${row.maxAbsDiff})${withRanges ? `; ranges arm64 vs x64: ${row.ranges}` : ''} → ${row.result}`);
for (const f of failures) console.error(`  FAIL ${o.profile} ${o.name}: ${f}`);
process.exit(failures.length ? 1 : 0);
