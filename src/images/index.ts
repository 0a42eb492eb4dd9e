export {
  PRESETS, RESIZE_MODES, COLOR_ORDERS, LAYOUTS, preprocessSchema, preprocessSpec, preprocessFromArgument, channelCount, tensorDims, preprocessRange,
  type PreprocessSpec, type PreprocessInput,
} from './spec.js';
export { placement, frameToTensor, luma, type Placement } from './tensor.js';
export { IMAGE_EXTENSIONS, isImageFile, imageToTensor, imageSize } from './decode.js';
