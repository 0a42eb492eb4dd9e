// `calibd serve`: the daemon. Loads the config, starts the agent (state, worker, engine)
// and the HTTP API, tells systemd it is ready, and shuts down cleanly on SIGTERM/SIGINT:
// stop accepting, finish in-flight requests, flush the buffer, close.

import { CalibrationAgent, agentMetrics } from '../agent/index.js';
import { assertPortFree, assertSafeBind, createApiServer, type ApiServer } from '../api/index.js';
import { loadConfig } from '../config/index.js';
import { FleetMember, LatencyRecorder, fleetOptionsFromConfig, readRetainedCalibration } from '../fleet/index.js';
import { SystemdNotifier } from '../service/index.js';
import { readModel } from '../onnx/index.js';
import { refuseQuantized } from './quantized.js';
import { createDaemonLogger } from './log.js';

export async function serveCommand(o: { config?: string }): Promise<void> {
  const config = loadConfig({ file: o.config });
  // Everything that can refuse does so before any work: a refusal after the first-boot
  // calibration would leave files behind and a worker keeping the process alive.
  assertSafeBind(config.http.host, config.http.token);
  // The daemon calibrates its model itself: an INT8 one would be quantized a second time.
  refuseQuantized(readModel(config.model), config.model, 'as model: (or CALIBD_MODEL); the daemon makes and serves its INT8 calibrations itself');
  await assertPortFree(config.http.host, config.http.port);
  const logger = createDaemonLogger(config);
  const agent = await CalibrationAgent.start(config, logger, {}, {
    readFleetCalibration: (sha256) => readRetainedCalibration(config, sha256, logger),
  });
  // Engine latency per request, for the fleet's metrics topic (fed by the API's hook).
  const latency = new LatencyRecorder();
  let api: ApiServer;
  let port: number;
  try {
    api = createApiServer(
      {
        engine: agent.engine,
        modelName: config.modelName,
        onInference: (inputs, _outputs, latencyMs) => {
          latency.record(latencyMs);
          agent.onInference(inputs);
        },
        admin: agent,
        metrics: agentMetrics(agent),
        preprocess: config.preprocess,
      },
      { ...config.http, logger },
    );
    ({ port } = await api.listen());
  } catch (err) {
    await agent.close();
    throw err;
  }
  // Fleet over MQTT. Connecting happens in the background; a broker that is down, or an
  // embedded broker that cannot listen, is logged and never stops inference.
  let fleet: FleetMember | null = null;
  if (config.mqtt) {
    try {
      fleet = await FleetMember.start(agent, logger, { ...fleetOptionsFromConfig(config, process.env), latency });
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'fleet (MQTT) not started; serving without it');
    }
  }
  const notifier = SystemdNotifier.fromEnv(process.env, { logger });
  await notifier?.ready(`serving ${config.modelName} on ${config.http.host}:${port}`);
  const stopWatchdog = notifier?.startWatchdog();
  logger.info({ host: config.http.host, port, model: config.modelName, status: agent.status().calibration }, 'calibd ready');

  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info({ signal }, 'shutting down');
  // A second signal must not kill the process halfway through flushing the buffer.
  const again = (sig: string) => logger.warn({ signal: sig }, 'already shutting down');
  process.on('SIGTERM', again);
  process.on('SIGINT', again);
  stopWatchdog?.();
  await notifier?.stopping();
  await api.close();
  await fleet?.stop().catch((err: Error) => logger.warn({ err: err.message }, 'fleet stop failed'));
  // The last responses' sampling hooks run on setImmediate and may still be queued when the
  // server reports closed; let them reach the agent before it stops taking samples.
  await new Promise((resolve) => setImmediate(resolve));
  await agent.close();
  logger.info({}, 'stopped');
}
