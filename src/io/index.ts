export {
  loadSafetensors, saveSafetensors, loadInto, readSafetensorsHeader, decodeSafetensors, encodeSafetensors, MAX_HEADER_BYTES,
} from './safetensors';
export type { SafetensorsEntry, SafetensorsHeader, LoadIntoOptions, LoadIntoResult } from './safetensors';
export { mapNames, timmMobileNetV2Name, detectConvention } from './names';
export type { NameConvention } from './names';
