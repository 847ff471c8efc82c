export { startDimseListener, associationSlots, type DimseListener, type ListenerTls } from './listener.js';
