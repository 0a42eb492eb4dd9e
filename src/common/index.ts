export { CalibdError, ModelError, DataError, OptionError, errorMessage } from './errors.js';
export { writeFileAtomic } from './atomic-file.js';
export { calibdVersion } from './version.js';
