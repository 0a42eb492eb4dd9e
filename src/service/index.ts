export { SystemdNotifier, NotifyError, watchdogIntervalMs, type NotifyLogger, type SystemdNotifierOptions } from './sd-notify.js';
export { readCredential, CredentialError } from './credentials.js';
