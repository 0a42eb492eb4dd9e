// Plain-text tables for the terminal.

import type { Comparison } from '../calibration/index.js';
import type { CalibrationProfile } from '../quant/index.js';

export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n') + '\n';
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const db = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} dB` : x > 0 ? 'exact' : '-inf');

export function formatEval(r: Comparison): string {
  let s = `samples:          ${r.samples}\n`;
  s += `top-1 agreement:  ${pct(r.agreement)}\n`;
  s += `output SQNR:      ${db(r.sqnrDb)}\n`;
  if (r.accuracyFp32 !== undefined) {
    s += `accuracy FP32:    ${pct(r.accuracyFp32)}\n`;
    s += `accuracy INT8:    ${pct(r.accuracyInt8!)}  (${((r.accuracyInt8! - r.accuracyFp32) * 100).toFixed(2)} points)\n`;
  }
  if (r.tensors?.length) {
    s += '\nworst tensors:\n';
    s += table(['tensor', 'SQNR'], r.tensors.slice(0, 10).map((t) => [t.name, db(t.sqnrDb)]));
  }
  return s;
}

export function formatInspect(path: string, p: CalibrationProfile): string {
  let s = `${path}\n`;
  s += `  method:        ${p.method} ${JSON.stringify(p.options)}\n`;
  s += `  created:       ${p.createdAt} by calibd ${p.calibdVersion}\n`;
  s += `  source model:  sha256 ${p.sourceModelSha256}\n`;
  s += `  samples:       ${p.sampleCount}${p.rejectedSamples ? ` (${p.rejectedSamples} non-finite rejected)` : ''}\n`;
  s += `  INT8 nodes:    ${p.quantizedNodes}${p.excludedNodes.length ? `; excluded: ${p.excludedNodes.join(', ')}` : ''}\n`;
  s += `  Q/DQ domain:   ${p.qdqDomain}\n`;
  if (p.validation) s += `  validation:    ${Object.entries(p.validation).map(([k, v]) => `${k}=${v}`).join(', ')}\n`;
  s += '\n';
  s += table(
    ['tensor', 'min', 'max', 'scale', 'zero-point', 'type'],
    Object.entries(p.tensors).map(([name, t]) => [name, t.min.toPrecision(5), t.max.toPrecision(5), t.scale.toPrecision(5), t.zeroPoint, t.type]),
  );
  return s;
}
