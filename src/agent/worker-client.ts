// The daemon's side of the calibration worker: typed request/response over postMessage.
// A crashed worker fails every pending request with a typed error instead of hanging.

import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CalibdError, isErrorCode } from '../common/index.js';
import type { RequestType, Requests, ResponseMessage } from './worker-protocol.js';

/**
 * A failure in or of the worker. Typed errors thrown inside it keep their code across the
 * thread boundary; anything else (a crash, a system error's ENOMEM) is 'worker'.
 */
export class WorkerError extends CalibdError {
  constructor(message: string, code: unknown = 'worker', hint = '') {
    super(isErrorCode(code) ? code : 'worker', message, { hint });
  }
}

/**
 * The worker runs compiled JavaScript. From dist/ it sits next to this file; when this file
 * runs from src/ (tests through vite), the build in dist/ is used.
 */
function workerPath(): string {
  const here = fileURLToPath(import.meta.url);
  const js = here.replace(/worker-client\.(ts|js)$/, 'calibration-worker.js');
  if (here.endsWith('.js')) return js;
  const dist = js.replace(/([\\/])src([\\/])agent([\\/])/, '$1dist$2agent$3');
  if (!existsSync(dist)) {
    throw new WorkerError(`calibration worker not built (${dist})`, 'worker', 'run `npm run build`');
  }
  return dist;
}

export class CalibrationWorker {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private dead: Error | null = null;

  constructor() {
    // Low priority is the OS's job (the unit's Nice/CPUWeight); a worker keeps the event loop free.
    this.worker = new Worker(workerPath());
    this.worker.on('message', (msg: ResponseMessage) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new WorkerError(msg.error.message, msg.error.code, msg.error.hint));
    });
    const fail = (err: Error) => {
      this.dead = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on('error', (err) => fail(new WorkerError(`calibration worker crashed: ${err.message}`)));
    this.worker.on('exit', (code) => fail(new WorkerError(`calibration worker exited (code ${code})`)));
  }

  call<T extends RequestType>(type: T, payload: Requests[T]['req'], transfer: ArrayBuffer[] = []): Promise<Requests[T]['res']> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, type, payload }, transfer);
    });
  }

  /** Requests waiting for an answer (samples queue here while a recalibration runs). */
  get backlog(): number {
    return this.pending.size;
  }

  async terminate(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}
