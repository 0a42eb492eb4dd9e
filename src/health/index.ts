export { readHealth, HealthError, type Health, type ReadHealthOptions, type SystemInformationLike } from './health.js';
