export { startDimseListener, associationSlots, type DimseListener, type ListenerTls, type SharedLimits } from './listener.js';
