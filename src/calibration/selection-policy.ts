// The greedy policy of "INT8 only where it pays", apart from ORT: given what was measured
// of the full INT8 model (per-node kernel gains, sensitivities, the Q/DQ boundary cost) and
// a way to measure a variant, it decides which nodes to leave FP32. Measurements are
// injected (selection.ts times real ORT sessions), so the policy is tested with plain
// numbers.
//
//   drop what the profile says is slower in INT8 · drop isolated INT8 nodes that cannot pay
//   for their Q/DQ boundary · drop the most sensitive nodes until the accuracy budget holds ·
//   drop the smallest gains until the latency target holds · nothing pays: all FP32.

import type { Figures } from './metrics.js';

/** One end-to-end timing of a variant, interleaved with FP32 at batch 1. */
export interface Timing {
  fp32Ms: number;
  int8Ms: number;
  /** int8Ms / fp32Ms. */
  ratio: number;
}

export interface SelectionStep {
  step: string;
  excluded: number;
  agreement: number;
  sqnrDb: number;
  ratio?: number;
  kept: boolean;
}

/** Measures the INT8 model built with `exclude` left FP32. */
export interface VariantMeasure {
  accuracy(exclude: readonly string[]): Promise<Figures>;
  time(exclude: readonly string[]): Promise<Timing>;
  /** Nodes the variant computes in INT8. */
  int8Nodes(exclude: readonly string[]): number;
}

/** What is known of the full INT8 model before the search. */
export interface SelectionEvidence {
  /** Nodes decided on (compute and chained ops of the full plan), in graph order. */
  candidates: string[];
  /** Kernel time per run of each candidate, µs: FP32 model and full INT8 model. */
  fp32Us: ReadonlyMap<string, number>;
  int8Us: ReadonlyMap<string, number>;
  /** Output SQNR with each compute node alone FP32, and with none, dB. */
  sensitivityDb: ReadonlyMap<string, number>;
  sensitivityBaseDb: number;
  /** Cost of a Q/DQ pair on each side of a node, µs. */
  boundaryUs: number;
  /** Each candidate's nearest candidates up and down the graph. */
  neighbours: ReadonlyMap<string, readonly string[]>;
  /** The full INT8 model's accuracy and timing. */
  full: { acc: Figures; time: Timing };
}

export interface SelectionLimits {
  /** Whether figures are inside the accuracy budget. */
  meets: (f: Figures) => boolean;
  /** Latency ratio that must hold, and the one worth a few more timings. */
  target: number;
  prefer: number;
  /** End-to-end timings allowed, and those already spent (the full model's). */
  maxTimings: number;
  timingsUsed: number;
}

export interface PolicyOutcome {
  exclude: string[];
  /** Why each FP32 node is FP32. */
  reasons: Map<string, string>;
  /** The search's steps (the full model's and the final one are the caller's). */
  steps: SelectionStep[];
  final: { acc: Figures; time: Timing };
}

/** Kernel time a node saves in INT8, µs (negative: slower). */
export function gainUs(ev: SelectionEvidence, n: string): number {
  return (ev.fp32Us.get(n) ?? 0) - (ev.int8Us.get(n) ?? 0);
}

/** Output SQNR a compute node gains when it alone is FP32, dB. */
export function sensitivityGainDb(ev: SelectionEvidence, n: string): number {
  return (ev.sensitivityDb.get(n) ?? ev.sensitivityBaseDb) - ev.sensitivityBaseDb;
}

/** Nodes the profile shows slower in INT8, beyond its resolution: 1 µs or 5% of the FP32 kernel. */
export function slowerInInt8(ev: SelectionEvidence): string[] {
  return ev.candidates.filter((n) => -gainUs(ev, n) > Math.max(1, 0.05 * (ev.fp32Us.get(n) ?? 0)));
}

/** INT8 nodes with only FP32 neighbours whose gain cannot pay for a Q/DQ pair on each side. */
export function isolatedNodes(ev: SelectionEvidence, exclude: readonly string[]): string[] {
  return ev.candidates
    .filter((n) => !exclude.includes(n))
    .filter((n) => gainUs(ev, n) < ev.boundaryUs && (ev.neighbours.get(n) ?? []).every((m) => exclude.includes(m)));
}

/** The search, run from full INT8. `onStep` sees each step as it is measured. */
export async function greedySelection(
  ev: SelectionEvidence, measure: VariantMeasure, limits: SelectionLimits, onStep: (s: SelectionStep, acc: Figures) => void = () => undefined,
): Promise<PolicyOutcome> {
  return new GreedySearch(ev, measure, limits, onStep).run();
}

class GreedySearch {
  private timings: number;
  private exclude: string[] = [];
  private current: { ratio: number; ms: number; acc: Figures };
  private readonly reasons = new Map<string, string>();
  private readonly steps: SelectionStep[] = [];

  constructor(
    private readonly ev: SelectionEvidence,
    private readonly measure: VariantMeasure,
    private readonly limits: SelectionLimits,
    private readonly onStep: (s: SelectionStep, acc: Figures) => void,
  ) {
    this.timings = limits.timingsUsed;
    this.current = { ratio: ev.full.time.ratio, ms: ev.full.time.int8Ms, acc: ev.full.acc };
  }

  async run(): Promise<PolicyOutcome> {
    await this.dropSlower();
    await this.dropIsolated();
    await this.meetAccuracy();
    await this.meetLatency();
    const final = await this.confirm();
    return { exclude: this.exclude, reasons: this.reasons, steps: this.steps, final };
  }

  private int8Now(): string[] {
    return this.ev.candidates.filter((n) => !this.exclude.includes(n));
  }

  private time(exclude: readonly string[]): Promise<Timing> {
    this.timings++;
    return this.measure.time(exclude);
  }

  /** Measures `next`; keeps it (with its reasons) when `accept` says so. */
  private async tryStep(name: string, next: string[], why: Map<string, string>, accept: (ratio: number, acc: Figures) => boolean): Promise<boolean> {
    if (this.timings >= this.limits.maxTimings) return false;
    const acc = await this.measure.accuracy(next);
    const t = await this.time(next);
    const kept = accept(t.ratio, acc);
    const step = { step: name, excluded: next.length, ...acc, ratio: t.ratio, kept };
    this.steps.push(step);
    this.onStep(step, acc);
    if (kept) {
      this.exclude = next;
      this.current = { ratio: t.ratio, ms: t.int8Ms, acc };
      for (const [n, r] of why) this.reasons.set(n, r);
    }
    return kept;
  }

  private noWorse = (ratio: number) => ratio <= this.current.ratio * 1.02;

  private async dropSlower(): Promise<void> {
    const slower = slowerInInt8(this.ev);
    if (!slower.length) return;
    const why = new Map(slower.map((n) => [n, `INT8 ${(-gainUs(this.ev, n)).toFixed(0)} µs slower`]));
    await this.tryStep('slower in INT8 (profile)', slower, why, this.noWorse);
  }

  private async dropIsolated(): Promise<void> {
    const isolated = isolatedNodes(this.ev, this.exclude);
    if (!isolated.length) return;
    const why = new Map(isolated.map((n) => [n, `isolated; gain ${gainUs(this.ev, n).toFixed(0)} µs < boundary ${this.ev.boundaryUs.toFixed(0)} µs`]));
    await this.tryStep('isolated, gain below Q/DQ cost', [...this.exclude, ...isolated], why, this.noWorse);
  }

  /** Leaves FP32 the most sensitive nodes, as few as the budget allows (binary search). */
  private async meetAccuracy(): Promise<void> {
    const { meets } = this.limits;
    if (meets(this.current.acc)) return;
    const order = this.int8Now().sort((a, b) => sensitivityGainDb(this.ev, b) - sensitivityGainDb(this.ev, a));
    let lo = 1;
    let hi = order.length;
    let found: { k: number; acc: Figures } | null = null;
    while (lo <= hi) {
      const k = Math.floor((lo + hi) / 2);
      const acc = await this.measure.accuracy([...this.exclude, ...order.slice(0, k)]);
      if (meets(acc)) {
        found = { k, acc };
        hi = k - 1;
      } else lo = k + 1;
    }
    const k = found?.k ?? order.length;
    const next = [...this.exclude, ...order.slice(0, k)];
    const why = new Map(order.slice(0, k).map((n) => [n, `sensitive: +${sensitivityGainDb(this.ev, n).toFixed(1)} dB when FP32`]));
    if (!(await this.tryStep('accuracy budget', next, why, () => true))) {
      // Out of timings: the budget still decides, untimed.
      this.exclude = next;
      for (const [n, r] of why) this.reasons.set(n, r);
      this.current = { ...this.current, acc: found?.acc ?? (await this.measure.accuracy(next)) };
    }
  }

  /** Leaves FP32 the smallest gains until the ratio holds (then, if cheap, the preferred one). */
  private async meetLatency(): Promise<void> {
    const { meets, target, prefer, maxTimings } = this.limits;
    while (this.timings < maxTimings && this.int8Now().length > 0 && (this.current.ratio > target || (this.current.ratio > prefer && this.timings < maxTimings - 1))) {
      const left = this.int8Now().sort((a, b) => gainUs(this.ev, a) - gainUs(this.ev, b));
      const take = left.slice(0, Math.max(1, Math.ceil(left.length / 4)));
      const mustImprove = this.current.ratio <= target;
      const accept = (r: number, a: Figures) => (meets(a) || !meets(this.current.acc)) && (!mustImprove || r < this.current.ratio);
      const why = new Map(take.map((n) => [n, `gain ${gainUs(this.ev, n).toFixed(0)} µs too small for the latency target`]));
      const ok = await this.tryStep('latency', [...this.exclude, ...take], why, accept);
      if (!ok && mustImprove) break;
    }
  }

  /**
   * Nothing pays: all FP32 (no Q/DQ left at all). Otherwise a confirming timing; when it
   * does not reproduce the gain, all FP32 too: never ship a model that may be slower.
   */
  private async confirm(): Promise<{ acc: Figures; time: Timing }> {
    const { target, maxTimings } = this.limits;
    const allFp32 = this.int8Now().length === 0 || (this.current.ratio > target && this.timings >= maxTimings);
    if (allFp32 && this.int8Now().length > 0) this.allFp32('no INT8 selection beat FP32');
    let acc = await this.measure.accuracy(this.exclude);
    let time = await this.time(this.exclude);
    if (this.measure.int8Nodes(this.exclude) > 0 && time.ratio > target) {
      this.allFp32('the final timing did not confirm the gain');
      acc = await this.measure.accuracy(this.exclude);
      time = await this.time(this.exclude);
    }
    return { acc, time };
  }

  private allFp32(reason: string): void {
    for (const n of this.int8Now()) this.reasons.set(n, reason);
    this.exclude = [...this.ev.candidates];
  }
}
