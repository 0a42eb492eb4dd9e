// The daemon's own costs, measured on the agent and HTTP API wired together in this process
// the way `calibd serve` wires them, so variants can alternate block by block (see
// timing.ts and the field notes on timing in docs/ARCHITECTURE.md):
//   1. sampling every request vs sampling off: p50 of HTTP inference (batch 1 digits);
//   2. p99 while a full recalibration runs in the background vs steady;
//   3. swap time (build + warm, accept → swapped) over repeated rollbacks;
//   4. full recalibration from N = 100 and 1,000 buffered samples against the serving time
//      of those N requests, and the incremental (statistics-only) recalibration.
// State lives in temporary folders that are removed afterwards.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CalibrationAgent, agentMetrics, type AgentEvent } from '../../src/agent/index.js';
import type { Logger } from '../../src/common/index.js';
import { createApiServer, type ApiServer } from '../../src/api/index.js';
import { parseConfig } from '../../src/config/index.js';
import { loadMnistSplit, IMAGE_SIZE } from '../lib/mnist-data.js';
import { interleaved, percentile } from './timing.js';
import type { BenchRow } from './row.js';

export type Row = BenchRow;

export interface DaemonBenchOptions {
  quick: boolean;
  /** Progress lines (bench.ts passes its stderr logger). */
  log?: (line: string) => void;
}

const modelPath = join(import.meta.dirname, '..', '..', 'models', 'mnist-cnn.onnx');
/** sampling.oneIn that samples nothing in practice: Math.random() * OFF < 1 about once in 10^9. */
const OFF = 1_000_000_000;

const silent: Logger = { info() {}, warn() {}, error() {} };

const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 0.5);
const ms = (x: number) => `${x.toFixed(x < 10 ? 3 : 1)} ms`;

/** One daemon: agent + API on a loopback port, as serve.ts builds them. */
class Daemon {
  /** Requests made while every request is sampled (oneIn = 1), i.e. samples handed to the agent. */
  private sampledCalls = 0;
  readonly events: AgentEvent[] = [];
  private next = 0;

  private constructor(
    readonly agent: CalibrationAgent,
    private readonly api: ApiServer,
    private readonly base: string,
    private readonly stateDir: string,
    private readonly bodies: string[],
  ) {
    agent.on('event', (e: AgentEvent) => this.events.push(e));
  }

  static async start(name: string, bodies: string[]): Promise<Daemon> {
    const stateDir = mkdtempSync(join(tmpdir(), `calibd-bench-${name}-`));
    try {
      const config = parseConfig({
        model: modelPath,
        deviceId: `bench-${name}`,
        stateDir,
        http: { host: '127.0.0.1', port: 0 },
        threads: 1,
        // minSamples = maxRows: the buffer never reaches it, so no first-data or drift
        // recalibration starts by itself; every one here is started by the benchmark.
        sampling: { oneIn: OFF, maxRows: 5000 },
        recalibration: { everyInferences: 0, method: 'percentile', minSamples: 5000 },
        firstBoot: 'datafree',
        log: { level: 'silent' },
      });
      const agent = await CalibrationAgent.start(config, silent);
      let daemon: Daemon | undefined;
      const api = createApiServer(
        {
          engine: agent.engine,
          modelName: config.modelName,
          onInference: (inputs) => {
            if (agent.config.sampling.oneIn === 1 && daemon) daemon.sampledCalls++;
            agent.onInference(inputs);
          },
          admin: agent,
          metrics: agentMetrics(agent),
        },
        config.http,
      );
      const { port } = await api.listen();
      daemon = new Daemon(agent, api, `http://127.0.0.1:${port}/v2/models/${config.modelName}/infer`, stateDir, bodies);
      return daemon;
    } catch (err) {
      rmSync(stateDir, { recursive: true, force: true });
      throw err;
    }
  }

  /** One batch-1 inference over HTTP; returns its round-trip time in ms. */
  async infer(body = this.bodies[this.next++ % this.bodies.length]): Promise<number> {
    const t0 = performance.now();
    const res = await fetch(this.base, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await res.arrayBuffer();
    const t = performance.now() - t0;
    if (res.status !== 200) throw new Error(`inference: HTTP ${res.status}`);
    return t;
  }

  setSampling(oneIn: number): void {
    this.agent.config.sampling.oneIn = oneIn;
  }

  /** Waits until every sample handed to the agent is in the buffer (or counted as dropped). */
  async drain(expected?: number, timeoutMs = 10_000): Promise<void> {
    // The API hands inputs to the agent in a setImmediate after answering: let those run.
    await new Promise((r) => setImmediate(r));
    const t0 = Date.now();
    for (;;) {
      const c = this.agent.counts();
      if (c.sampled + c.dropped + c.errors >= (expected ?? this.sampledCalls)) break;
      if (Date.now() - t0 > timeoutMs) throw new Error('sampled inputs did not reach the buffer in time');
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** Sends `bodies` with every request sampled until the buffer holds `rows` samples. */
  async fill(rows: number, bodies: string[]): Promise<void> {
    const start = this.agent.counts();
    let sent = start.sampled + start.dropped + start.errors;
    let i = 0;
    this.setSampling(1);
    try {
      while (this.agent.counts().sampled < rows) {
        // Bursts well under the agent's backlog limit, so nothing is dropped.
        const burst = Math.min(16, rows - this.agent.counts().sampled);
        for (let k = 0; k < burst; k++) await this.infer(bodies[i++ % bodies.length]);
        sent += burst;
        await this.drain(sent);
      }
    } finally {
      this.setSampling(OFF);
    }
    this.agent.buffer.flush();
  }

  /** Median round trip of `n` sequential requests, after a few unrecorded ones. */
  async medianLatency(n: number): Promise<number> {
    for (let i = 0; i < 10; i++) await this.infer();
    const t: number[] = [];
    for (let i = 0; i < n; i++) t.push(await this.infer());
    return median(t);
  }

  async close(): Promise<void> {
    try {
      await this.api.close();
      await this.agent.close();
    } finally {
      rmSync(this.stateDir, { recursive: true, force: true });
    }
  }
}

function jsonBodies(images: Float32Array, from: number, count: number): string[] {
  const out: string[] = [];
  for (let i = from; i < from + count; i++) {
    const data = Array.from(images.subarray(i * IMAGE_SIZE, (i + 1) * IMAGE_SIZE));
    out.push(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data }] }));
  }
  return out;
}

export async function daemonBenchmarks(opts: DaemonBenchOptions): Promise<Row[]> {
  const { quick } = opts;
  const log = opts.log ?? (() => undefined);
  const rows: Row[] = [];
  const { train, test } = loadMnistSplit();
  const served = jsonBodies(test.images, 0, 200);
  const collected = jsonBodies(train.images, 0, 1000);

  // Benchmarks 1–3 share a daemon whose buffer holds 1,000 samples and which serves a
  // calibration made from them (the state a device settles into).
  const a = await Daemon.start('a', served);
  try {
    await a.fill(1000, collected);
    await a.agent.recalibrate({ full: true });
    await a.medianLatency(quick ? 20 : 50); // warm-up

    // 1. Sampling on vs off.
    const sampledBefore = a.agent.counts().sampled;
    const droppedBefore = a.agent.counts().dropped;
    const variant = (name: string, oneIn: number) => ({
      name,
      run: async () => {
        if (a.agent.config.sampling.oneIn !== oneIn) {
          // Switching: the first run of a block is dropped, so it may wait for the worker to
          // finish the previous block's samples and the 'off' block starts really idle.
          await new Promise((r) => setImmediate(r));
          a.setSampling(oneIn);
          await a.drain();
        }
        await a.infer();
      },
    });
    const [on, tenth, off] = await interleaved([variant('on', 1), variant('default', 10), variant('off', OFF)], { blocks: quick ? 6 : 12, perBlock: quick ? 14 : 30 });
    a.setSampling(OFF);
    await a.drain();
    const sampled = a.agent.counts().sampled - sampledBefore;
    const dropped = a.agent.counts().dropped - droppedBefore;
    rows.push({
      section: 'daemon',
      name: 'HTTP p50, sampling every request / sampling off',
      value: on.medianMs / off.medianMs,
      unit: 'ratio',
      target: '<= 1.03',
      detail: `on ${ms(on.medianMs)} (p99 ${ms(on.p99Ms)}), off ${ms(off.medianMs)} (p99 ${ms(off.p99Ms)}), ${on.runs} runs each; ${sampled} sampled, ${dropped} dropped`,
    });
    rows.push({
      section: 'daemon',
      name: 'HTTP p50, sampling 1 in 10 (default) / sampling off',
      value: tenth.medianMs / off.medianMs,
      unit: 'ratio',
      target: '<= 1.03',
      detail: `1 in 10 ${ms(tenth.medianMs)} (p99 ${ms(tenth.p99Ms)}), off ${ms(off.medianMs)}`,
    });
    log(`daemon sampling on/off p50: ${(on.medianMs / off.medianMs).toFixed(3)} (${ms(on.medianMs)} vs ${ms(off.medianMs)}); 1 in 10: ${(tenth.medianMs / off.medianMs).toFixed(3)}`);

    // 2. p99 while a full recalibration runs in the background vs steady.
    const steady: number[] = [];
    const during: number[] = [];
    const recalMs: number[] = [];
    const outcomes: string[] = [];
    let blockLength = 60;
    for (let b = 0; b < (quick ? 6 : 10); b++) {
      const recalFirst = b % 2 === 1;
      for (const withRecal of recalFirst ? [true, false] : [false, true]) {
        if (!withRecal) {
          for (let i = 0; i < blockLength; i++) steady.push(await a.infer());
          continue;
        }
        let done = false;
        const t0 = performance.now();
        const job = a.agent.recalibrate({ full: true }).finally(() => {
          done = true;
          recalMs.push(performance.now() - t0);
        });
        void job.then((r) => outcomes.push(r.state));
        let n = 0;
        while (!done) {
          during.push(await a.infer());
          n++;
        }
        await job;
        blockLength = Math.max(50, n);
      }
    }
    const sortedSteady = [...steady].sort((x, y) => x - y);
    const sortedDuring = [...during].sort((x, y) => x - y);
    const p99Steady = percentile(sortedSteady, 0.99);
    const p99During = percentile(sortedDuring, 0.99);
    rows.push({
      section: 'daemon',
      name: 'HTTP p99, during full recalibration (N=1000) / steady',
      value: p99During / p99Steady,
      unit: 'ratio',
      target: '<= 1.5',
      detail:
        `during p99 ${ms(p99During)} p50 ${ms(percentile(sortedDuring, 0.5))} (${during.length} runs), ` +
        `steady p99 ${ms(p99Steady)} p50 ${ms(percentile(sortedSteady, 0.5))} (${steady.length} runs); recalibration ${ms(median(recalMs))} median, ` +
        `${outcomes.filter((o) => o === 'accepted').length}/${outcomes.length} accepted (an accepted one swaps inside the block)`,
    });
    log(`daemon p99 during recal / steady: ${(p99During / p99Steady).toFixed(3)} (${ms(p99During)} vs ${ms(p99Steady)})`);

    // 3. Swap time: rollbacks back and forth between the two newest swappable versions.
    const swappable = a.agent.profiles
      .list({})
      .filter((p) => p.modelPath && p.state !== 'rejected')
      .map((p) => p.version);
    if (swappable.length < 2) throw new Error(`need two swappable calibrations for the swap benchmark, have ${swappable.length}`);
    const current = Number((a.agent.status().calibration as { version: number }).version);
    const other = swappable.find((v) => v !== current);
    if (other === undefined || !swappable.includes(current)) throw new Error('no second swappable calibration for the swap benchmark');
    const firstRollback = a.events.length;
    const callMs: number[] = [];
    const rollbacks = quick ? 6 : 12;
    for (let i = 0; i < rollbacks; i++) {
      const t0 = performance.now();
      await a.agent.rollback({ version: i % 2 === 0 ? other : current });
      callMs.push(performance.now() - t0);
    }
    const rb = a.events.slice(firstRollback).filter((e) => e.type === 'rollback').map((e) => e.data as { swapMs: number; buildMs: number; warmMs: number });
    const accepted = a.events.filter((e) => e.type === 'calibration.accepted').map((e) => e.data as { swapMs: number });
    const build = median(rb.map((d) => d.buildMs));
    const warm = median(rb.map((d) => d.warmMs));
    rows.push({
      section: 'daemon',
      name: 'engine.swap build + warm (rollback)',
      value: build + warm,
      unit: 'ms',
      detail: `build ${ms(build)}, warm ${ms(warm)}; medians over ${rb.length} rollbacks`,
    });
    rows.push({
      section: 'daemon',
      name: 'accept → swapped (rollback)',
      value: median(rb.map((d) => d.swapMs)),
      unit: 'ms',
      detail: `swapMs from the events, median of ${rb.length}; rollback() call ${ms(median(callMs))} median` +
        (accepted.length ? `; after accepted recalibrations ${ms(median(accepted.map((d) => d.swapMs)))} median of ${accepted.length}` : ''),
    });
    log(`daemon swap: build+warm ${ms(build + warm)}, accept→swapped ${ms(median(rb.map((d) => d.swapMs)))}`);
  } finally {
    await a.close();
  }

  // 4. Recalibration cost from N buffered samples, on a fresh daemon whose buffer grows.
  const b = await Daemon.start('b', served);
  try {
    const reps = quick ? 2 : 3;
    for (const n of [100, 1000]) {
      await b.fill(n, collected);
      const rowsInBuffer = b.agent.buffer.count();
      const serveMs = await b.medianLatency(quick ? 50 : 100);
      const full: number[] = [];
      const incremental: number[] = [];
      const outcomes: string[] = [];
      for (let r = 0; r < reps; r++) {
        let t0 = performance.now();
        outcomes.push((await b.agent.recalibrate({ full: true })).state);
        full.push(performance.now() - t0);
        t0 = performance.now();
        outcomes.push((await b.agent.recalibrate({})).state);
        incremental.push(performance.now() - t0);
      }
      const fullMs = median(full);
      const accepted = outcomes.filter((o) => o === 'accepted').length;
      rows.push({
        section: 'daemon',
        name: `full recalibration, N=${n} / N × HTTP p50`,
        value: fullMs / (rowsInBuffer * serveMs),
        unit: 'ratio',
        detail: `full ${ms(fullMs)} (median of ${reps}), ${rowsInBuffer} rows × ${ms(serveMs)} = ${ms(rowsInBuffer * serveMs)}; ${accepted}/${outcomes.length} recalibrations accepted`,
      });
      rows.push({
        section: 'daemon',
        name: `incremental recalibration, N=${n}`,
        value: median(incremental),
        unit: 'ms',
        detail: `median of ${reps}; full / incremental ${(fullMs / median(incremental)).toFixed(2)}`,
      });
      log(`daemon recal N=${n}: full ${ms(fullMs)} = ${(fullMs / (rowsInBuffer * serveMs)).toFixed(2)} × serving, incremental ${ms(median(incremental))}`);
    }
  } finally {
    await b.close();
  }
  return rows;
}
