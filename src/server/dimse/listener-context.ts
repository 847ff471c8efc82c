/**
 * What the association handler of a listener is given: the listener's shared state and the peer on the
 * other end. Apart from the handler (scp.ts) so that the services it calls (retrieve.ts) can name it
 * without importing the handler that imports them.
 */
import type { Config } from '../../config.js';
import type { Services } from '../services.js';
import type { AssociationSlots, ByteBudget } from './limits.js';

/** What every association of one listener shares. */
export interface ListenerContext {
  readonly services: Services;
  readonly slots: AssociationSlots;
  /** Dataset bytes held at once across both listeners. */
  readonly budget: ByteBudget;
  readonly limits: Config['dimse'];
  /** Our AE title: the only called AE title served. */
  readonly aeTitle: string;
  /** 'tls' for the mutual-TLS listener, 'plain' for the legacy one. */
  readonly kind: 'tls' | 'plain';
}

/** Who is on the other end of a connection, before the association says more. */
export interface Peer {
  readonly address: string;
  /** The TLS-verified client certificate (TLS listener only). */
  readonly certificate?: { fingerprint256: string; subject?: string; subjectAltName?: string; validTo: string };
  /** False when the connection came in over the listener's association limit. */
  readonly withinLimit: boolean;
}
