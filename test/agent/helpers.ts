// The real agent in-process on a temporary state folder: real SQLite, real ORT sessions,
// the real calibration worker, with the bundled MNIST model and real digits. Only the
// state I/O seams (StateIo) may be swapped for faulty ones.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { IMAGE_SIZE, loadMnistSplit } from '../../scripts/lib/mnist-data.js';
import { CalibrationAgent, type AgentEvent, type StateIo } from '../../src/agent/index.js';
import { parseConfig, type CalibdConfig, type CalibdConfigInput } from '../../src/config/index.js';
import { paths } from '../helpers/paths.js';

export const silent = { info() {}, warn() {}, error() {} };
const { train } = loadMnistSplit();

export function tempState(): string {
  return mkdtempSync(join(tmpdir(), 'calibd-agent-'));
}

/**
 * Every sample is stored, nothing recalibrates on its own (minSamples = maxRows is never
 * reached by the few hundred digits a test sends), and the gate accepts every candidate
 * (SQNR within 100 dB), so each recalibrate() with new ranges yields a new version.
 */
export function agentConfig(stateDir: string, over: CalibdConfigInput = {}): CalibdConfig {
  return parseConfig({
    model: paths.mnistModel,
    stateDir,
    firstBoot: 'datafree',
    sampling: { oneIn: 1, maxRows: 5000 },
    recalibration: { everyInferences: 0, minSamples: 5000, validationSlice: 50, gateMargin: 100, method: 'minmax' },
    validation: { metric: 'sqnr', floor: -1000 },
    log: { level: 'silent' },
    ...over,
  });
}

export interface TestAgent {
  agent: CalibrationAgent;
  events: AgentEvent[];
}

export async function startAgent(config: CalibdConfig, io: StateIo = {}): Promise<TestAgent> {
  const events: AgentEvent[] = [];
  const agent = await CalibrationAgent.start(config, silent, io);
  agent.on('event', (e: AgentEvent) => events.push(e));
  return { agent, events };
}

export function digit(i: number): Float32Array {
  return train.images.subarray(i * IMAGE_SIZE, (i + 1) * IMAGE_SIZE);
}

/**
 * Sends digits [from, from + n) through the sampling hook, in groups the worker's backlog
 * (64) takes without dropping any, and waits until each group is stored.
 */
export async function feed(agent: CalibrationAgent, n: number, from = 0): Promise<void> {
  for (let start = from; start < from + n; start += 32) {
    const end = Math.min(from + n, start + 32);
    const target = agent.buffer.count() + (end - start);
    for (let i = start; i < end; i++) agent.onInference({ input: { shape: [1, 1, 28, 28], data: digit(i) } });
    await waitStored(agent, target);
  }
}

async function waitStored(agent: CalibrationAgent, rows: number): Promise<void> {
  for (let t = 0; t < 400; t++) {
    agent.buffer.flush();
    if (agent.buffer.count() >= rows) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`only ${agent.buffer.count()} of ${rows} samples stored`);
}

/** The served logits for digit `i` and the version that produced them. */
export async function infer(agent: CalibrationAgent, i: number): Promise<{ version: number; logits: number[] }> {
  const r = await agent.engine.infer({ input: { datatype: 'FP32', shape: [1, 1, 28, 28], data: digit(i).slice() } });
  return { version: r.version, logits: Array.from(r.outputs[Object.keys(r.outputs)[0]].data as Float32Array) };
}

/** What each part of the daemon says is active: the engine, status, and the database file itself. */
export function activeEverywhere(agent: CalibrationAgent): { engine: number | undefined; status: number; db: number[] } {
  const status = (agent.status() as { calibration: { version: number } }).calibration.version;
  const db = new Database(join(agent.config.stateDir, 'calibd.db'), { readonly: true, fileMustExist: true });
  try {
    const active = db.prepare("SELECT version FROM profiles WHERE state = 'active'").pluck().all() as number[];
    return { engine: agent.engine.activeVersion, status, db: active };
  } finally {
    db.close();
  }
}
