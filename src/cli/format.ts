// Plain-text tables for the terminal.

import { formatDb, formatMetric, parseMetric, type Comparison, type LayerReport, type SelectionResult } from '../calibration/index.js';
import type { CalibrationProfile } from '../quant/index.js';

export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n') + '\n';
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
// JSON keeps Infinity as null, so a null SQNR read back from a profile is an exact one.
const db = (x: number | null) => (x === null ? 'exact' : formatDb(x));

export function formatEval(r: Comparison): string {
  let s = `samples:          ${r.samples}\n`;
  s += `metric:           ${r.metric.name} = ${formatMetric(r.metric, r.value)}${r.outputs.length > 1 ? ' (worst output)' : ''}\n`;
  if (r.outputs.length > 1) for (const o of r.outputs) s += `  ${o.name}: ${formatMetric(r.metric, o.value)}, SQNR ${db(o.sqnrDb)}\n`;
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

/** The per-layer table: where error is born (isolated) and where it has piled up (accumulated). */
export function formatLayers(layers: LayerReport[]): string {
  return (
    '\nper layer (worst alone first):\n' +
    table(
      ['node', 'op', 'tensor', 'output SQNR alone', 'tensor SQNR alone', 'accumulated'],
      layers.map((l) => [l.node, l.opType, l.tensor, db(l.isolatedOutputDb), db(l.isolatedTensorDb), db(l.accumulatedDb)]),
    )
  );
}

export function formatInspect(path: string, p: CalibrationProfile): string {
  let s = `${path}\n`;
  s += `  method:        ${p.method} ${JSON.stringify(p.options)}\n`;
  s += `  target:        ${typeof p.options.target === 'string' ? p.options.target : 'ort'}\n`;
  s += `  created:       ${p.createdAt} by calibd ${p.calibdVersion}\n`;
  s += `  source model:  sha256 ${p.sourceModelSha256}\n`;
  s += `  samples:       ${p.sampleCount}${p.rejectedSamples ? ` (${p.rejectedSamples} non-finite rejected)` : ''}\n`;
  s += `  INT8 nodes:    ${p.quantizedNodes}${p.excludedNodes.length ? `; excluded: ${p.excludedNodes.join(', ')}` : ''}\n`;
  s += `  Q/DQ domain:   ${p.qdqDomain}\n`;
  if (p.validation) s += `  validation:    ${Object.entries(p.validation).map(([k, v]) => `${k}=${v}`).join(', ')}\n`;
  const sel = p.selection as SelectionResult | undefined;
  if (sel) s += `  selection:     ${selectionLine(sel)}\n                 FP32: ${sel.exclude.length ? sel.exclude.join(', ') : '(none)'}\n`;
  s += '\n';
  s += table(
    ['tensor', 'min', 'max', 'scale', 'zero-point', 'type'],
    Object.entries(p.tensors).map(([name, t]) => [name, t.min.toPrecision(5), t.max.toPrecision(5), t.scale.toPrecision(5), t.zeroPoint, t.type]),
  );
  return s;
}

const ms = (x: number) => `${x.toFixed(3)} ms`;
const us = (x: number | null) => (x === null ? '-' : x.toFixed(0));

function selectionLine(r: SelectionResult): string {
  const l = r.latency;
  const a = r.accuracy;
  return (
    `${r.outcome}, ${r.int8Nodes} nodes INT8; batch 1: FP32 ${ms(l.fp32Ms)}, full INT8 ${ms(l.fullInt8Ms)} (×${l.fullInt8Ratio.toFixed(2)}), ` +
    `auto ${ms(l.autoMs)} (×${l.ratio.toFixed(2)}); ${a.metric ? `${a.metric} ${formatMetric(parseMetric(a.metric), a.auto.value)} (budget ${formatMetric(parseMetric(a.metric), a.budget.value!)}), ` : ''}agreement ${pct(a.auto.agreement)}, SQNR ${db(a.auto.sqnrDb)} ` +
    `(budget ${pct(a.budget.agreement)}, ${a.budget.sqnrDb} dB${r.met.accuracy && r.met.latency ? ', met' : ', NOT met'}); ` +
    `${r.hardware.cpu}, ORT ${r.hardware.ortVersion}, ${r.hardware.threads} thread${r.hardware.threads > 1 ? 's' : ''}`
  );
}

/** The selection's outcome; with `full`, the per-layer table and every timed step too. */
export function formatSelection(r: SelectionResult, full: boolean): string {
  let s = `auto: ${selectionLine(r)}\n`;
  if (!full) return s;
  s += '\n';
  s += table(
    ['node', 'op', 'FP32 µs', 'INT8 µs', 'tensor SQNR', 'SQNR if FP32', 'decision', 'why'],
    r.perNode.map((n) => [n.node, n.opType, us(n.fp32Us), us(n.int8Us), n.tensorSqnrDb === null ? '-' : db(n.tensorSqnrDb), n.sensitivityDb === null ? '-' : db(n.sensitivityDb), n.decision.toUpperCase(), n.reason]),
  );
  s += `layout/Q-DQ overhead per run: FP32 ${r.overheadUs.fp32.toFixed(0)} µs, full INT8 ${r.overheadUs.int8.toFixed(0)} µs (kernel times from ORT's profiler)\n\n`;
  s += table(
    ['step', 'nodes FP32', 'ratio vs FP32', 'agreement', 'SQNR', 'kept'],
    r.steps.map((t) => [t.step, t.excluded, t.ratio === undefined ? '-' : t.ratio.toFixed(3), pct(t.agreement), db(t.sqnrDb ?? Infinity), t.kept ? 'yes' : 'no']),
  );
  return s;
}
