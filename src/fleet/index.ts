// Fleet over MQTT: the device side (FleetMember), the operator side (FleetClient) and the
// pieces they share (topics, signing, bounded queue, backoff, latency recorder).
export { FleetMember, type FleetAgent, type FleetMemberOptions, type ResponseBody } from './member.js';
export { FleetClient, type FleetClientOptions, type DeviceReply, type RequestOptions } from './client.js';
export { FleetConnection, resolvePassword, readTlsFiles, redactUrl, type ConnectionOptions, type ConnectionStats } from './connection.js';
export { startEmbeddedBroker, EMBEDDED_DEFAULT_PORT, type EmbeddedBroker } from './broker.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { BoundedQueue, type QueuedMessage } from './queue.js';
export { LatencyRecorder, type LatencySummary } from './latency.js';
export { SignatureVerifier, canonicalJson, hasValidSignature, readSigningKey, signPayload, signatureOf, type RequestAddress, type VerifyResult } from './signing.js';
export { deviceOf, deviceTopics, requestTopic, fleetCalibrationTopic, fleetCalibrationCommand, FLEET_LEVEL, type DeviceTopics } from './topics.js';
export { fleetOptionsFromConfig } from './env.js';
export { readRetainedCalibration, RETAINED_WAIT_MS } from './retained-calibration.js';
