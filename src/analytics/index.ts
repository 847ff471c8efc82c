export { Containment, type ContainmentLimits } from './containment.js';
export { byteEntropy, looksEncrypted } from './entropy.js';
