export { CalibdError, ModelError, DataError, OptionError, StateError, ERROR_CATALOGUE, errorMessage, httpStatusOf, isErrorCode, isRefusal, type ErrorCode } from './errors.js';
export { writeFileAtomic, realFs, type FsOps } from './atomic-file.js';
export { calibdVersion } from './version.js';
export {
  readNpy, parseNpy, writeNpy, encodeNpy, parseNpyHeader, readNpyHeader, readNpyRows,
  type NpyArray, type NpyData, type NpyDtype, type NpyHeader, type EncodeNpyOptions,
} from './npy.js';
export { mulberry32 } from './random.js';
export type { Logger } from './logger.js';
