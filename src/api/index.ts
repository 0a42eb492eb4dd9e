// HTTP API: KServe v2 inference, calibd admin routes and Prometheus metrics.
export { assertSafeBind, createApiServer, isLoopback, type ApiServer } from './server.js';
export { HttpError, InsecureBindError } from './errors.js';
export type { AdminControl, ApiDeps, ApiOptions } from './types.js';
