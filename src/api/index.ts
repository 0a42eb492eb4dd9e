// HTTP API: KServe v2 inference, calibd admin routes and Prometheus metrics.
export { assertPortFree, assertSafeBind, createApiServer, isLoopback, type ApiServer } from './server.js';
export { HttpError, InsecureBindError, PortInUseError } from './errors.js';
export type { AdminControl, ApiDeps, ApiOptions } from './types.js';
