// Public API of the state module: the state database (calibd.db) and the three stores it holds —
// sampled inputs, calibration profile versions, and the event log.

export { openStateDb, StateDb, DB_FILE, SCHEMA_VERSION, type OpenStateDbOptions } from './db.js';
export {
  SampleBuffer,
  type SampleBufferOptions,
  type NewSample,
  type StoredSample,
  type IterateOptions,
  type BufferStats,
} from './samples.js';
export type { TensorData, SampleInputs } from './codec.js';
export { planEviction, type GroupCount, type EvictionStep } from './eviction.js';
export { ProfileStore, profileStates, type ProfileRecord, type NewProfile, type ProfileState, type ProfileFigures } from './profiles.js';
export { EventLog, type EventRecord, type EventLogOptions } from './events.js';
