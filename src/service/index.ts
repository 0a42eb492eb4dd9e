export { SystemdNotifier, NotifyError, watchdogIntervalMs, type SystemdNotifierOptions } from './sd-notify.js';
export { readCredential, CredentialError } from './credentials.js';
