export {
  loadSafetensors, saveSafetensors, loadInto, readSafetensorsHeader, decodeSafetensors, encodeSafetensors, MAX_HEADER_BYTES,
} from './safetensors';
export type { SafetensorsEntry, SafetensorsHeader, LoadIntoOptions, LoadIntoResult } from './safetensors';
export { mapNames, detectConvention } from './names';
export { timmMobileNetV2Name } from '../models/mobilenetv2';
export type { NameConvention } from './names';
export { importTfjs, importTfjsModel, loadNsfwjsMobileNetV2, nsfwjsMobileNetV2Dir, NSFWJS_PREPROCESS, KERAS_CAFFE_PREPROCESS } from './tfjs-import';
export type { TfjsImport, TfjsImportOptions, Preprocess } from './tfjs-import';
export { readTfjsModel, readTfjsRaw, decodeRaw, MAX_MODEL_FILE_BYTES, MAX_WEIGHT_BYTES } from './tfjs-format';
export type { TfjsModel, TfjsWeight, KerasLayer, TfjsRaw } from './tfjs-format';
export { exportOnnx, encodeOnnx } from './onnx/export';
export type { ExportOnnxOptions } from './onnx/export';
export { importOnnx, importOnnxWithReport, readOnnx, MAX_ONNX_BYTES } from './onnx/import';
export type { ImportOnnxOptions, ImportOnnxReport } from './onnx/import';
