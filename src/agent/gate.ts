// The validation gate: a candidate calibration replaces the active one only when it is at
// least as good against FP32 on the held-out samples. Pure decision, easy to test.

export interface Figures {
  /** Top-1 agreement with FP32, in [0, 1]. */
  agreement: number;
  /** Output SQNR against FP32, dB. */
  sqnrDb: number;
  samples: number;
}

export interface GateDecision {
  accept: boolean;
  reason: string;
}

/**
 * `margin`: agreement points (0–100) the candidate may lose. When there is nothing to beat
 * (serving FP32, or the data-free bootstrap), the candidate must clear `floor` alone.
 */
export function gate(candidate: Figures, current: Figures | null, margin = 0, floor = 0.97): GateDecision {
  if (candidate.samples === 0) return { accept: false, reason: 'no validation samples' };
  if (!current) {
    return candidate.agreement >= floor
      ? { accept: true, reason: `agreement ${pct(candidate.agreement)} clears the ${pct(floor)} floor (nothing to beat)` }
      : { accept: false, reason: `agreement ${pct(candidate.agreement)} is under the ${pct(floor)} floor` };
  }
  const lost = (current.agreement - candidate.agreement) * 100;
  if (lost > margin + 1e-9) {
    return { accept: false, reason: `agreement ${pct(candidate.agreement)} vs ${pct(current.agreement)} active: loses ${lost.toFixed(2)} points (margin ${margin})` };
  }
  if (candidate.agreement > current.agreement) {
    return { accept: true, reason: `agreement ${pct(candidate.agreement)} beats ${pct(current.agreement)}` };
  }
  // Agreement ties (within the margin): SQNR decides.
  if (candidate.sqnrDb >= current.sqnrDb) {
    return { accept: true, reason: `agreement ${pct(candidate.agreement)} (active ${pct(current.agreement)}), SQNR ${candidate.sqnrDb.toFixed(1)} ≥ ${current.sqnrDb.toFixed(1)} dB` };
  }
  return { accept: false, reason: `SQNR ${candidate.sqnrDb.toFixed(1)} < ${current.sqnrDb.toFixed(1)} dB active at equal agreement` };
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
