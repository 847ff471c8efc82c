import dimse from 'dcmjs-dimse';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { PacsGuardError } from '../../errors.js';
import { auditRejection } from '../path.js';
import type { Services } from '../services.js';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION } from '../../dicom/index.js';
import { AssociationSlots, ByteBudget, PduFramer, PduGuard } from './limits.js';
import type { ListenerContext, Peer } from './listener-context.js';
import { AssociationScp } from './scp.js';

/** A running DICOM listener. */
export interface DimseListener {
  /** `dicom-tls://HOST:PORT` or `dicom://HOST:PORT`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** The server's TLS identity, from the data directory's pki/ folder. */
export interface ListenerTls {
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
}

// Connections past the association limit still get an A-ASSOCIATE-RJ (local limit exceeded); past twice
// the limit they are closed unanswered, so a flood cannot make us hold a DICOM stack per connection.
const HARD_LIMIT_FACTOR = 2;

/** The counters both listeners share, so the limits hold across them. */
export interface SharedLimits {
  readonly slots: AssociationSlots;
  readonly budget: ByteBudget;
}

/** The association counters and the dataset byte budget both listeners share. */
export function associationSlots(services: Services): SharedLimits {
  return {
    slots: new AssociationSlots(services.config.dimse.maxAssociations, services.config.dimse.maxAssociationsPerDevice),
    budget: new ByteBudget(services.config.dimse.maxBufferedBytes),
  };
}

/**
 * Starts a DICOM listener: mutual TLS (TLS 1.2+, a client certificate from our CA required) when `tls`
 * is given, plain TCP for registered legacy devices otherwise. Each connection gets TCP_NODELAY, a PDU
 * guard in front of the DICOM stack, and its own association on the one path.
 */
export async function startDimseListener(
  services: Services,
  opts: { host: string; port: number; tls?: ListenerTls; shared: SharedLimits },
): Promise<DimseListener> {
  const limits = services.config.dimse;
  // dcmjs-dimse logs every PDU at INFO by default (its enableAll(false) enables, it does not disable):
  // that is patient data in logs and a console write per PDU. What matters goes to the audit trail.
  dimse.log.setLevel('silent');
  // dcmjs-dimse keeps its maximum PDU length in a static; the AC announces it (see AssociationScp).
  dimse.Implementation.setMaxPduLength(limits.maxPduBytes);
  dimse.Implementation.setImplementationClassUid(IMPLEMENTATION_CLASS_UID);
  dimse.Implementation.setImplementationVersion(IMPLEMENTATION_VERSION);
  const kind = opts.tls ? 'tls' : 'plain';
  const ctx: ListenerContext = { services, slots: opts.shared.slots, budget: opts.shared.budget, limits, aeTitle: services.config.aeTitle, kind };
  const sockets = new Set<Socket>();
  let hard = 0;

  const track = (raw: Socket): boolean => {
    raw.setNoDelay(true);
    sockets.add(raw);
    raw.once('close', () => sockets.delete(raw));
    if (sockets.size > limits.maxAssociations * HARD_LIMIT_FACTOR) {
      hard++;
      raw.destroy();
      // Audited in summary, not per connection: a flood must not also flood the audit trail.
      if (hard === 1 || hard % 1000 === 0) {
        void auditRejection(services, {
          protocol: 'dimse', sourceAddress: raw.remoteAddress ?? '', credentials: { kind: 'none' }, action: 'dimse.associate', eventType: 'Association Rejected',
          detail: { listener: kind, droppedConnections: hard },
        }, new PacsGuardError('PG_ERR_DIMSE_LIMIT', `connection flood: ${hard} connections closed unanswered past ${limits.maxAssociations * HARD_LIMIT_FACTOR} open`)).catch(() => undefined);
      }
      return false;
    }
    return true;
  };

  const serve = (socket: Socket | TLSSocket, certificate: Peer['certificate']) => {
    const withinLimit = opts.shared.slots.openConnection();
    socket.once('close', () => {
      if (withinLimit) opts.shared.slots.closeConnection();
    });
    const guard = new PduGuard(limits.maxPduBytes);
    const scp = new AssociationScp(socket, ctx, { address: socket.remoteAddress ?? '', certificate, withinLimit });
    // Our reader stands in front of dcmjs-dimse's: an oversized or malformed PDU is refused before any of
    // it is buffered, and the stack is handed whole PDUs (see PduFramer).
    const stack = socket.listeners('data') as Array<(chunk: Buffer) => void>;
    socket.removeAllListeners('data');
    const framer = new PduFramer();
    socket.on('data', (chunk: Buffer) => {
      const violation = guard.feed(chunk);
      if (violation) {
        socket.pause();
        void scp.refusePdu(violation);
        return;
      }
      for (const pdu of framer.push(chunk)) for (const listener of stack) listener.call(socket, pdu);
    });
    socket.on('error', () => undefined);
  };

  let server: Server;
  if (opts.tls) {
    const tlsServer = createTlsServer({
      key: opts.tls.key, cert: opts.tls.cert, ca: opts.tls.ca,
      // The chain is checked against our CA by OpenSSL during the handshake; we refuse an unverified
      // peer ourselves right after it (below), so the audit says exactly why (expired, unknown CA, none).
      requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2',
      handshakeTimeout: limits.associationTimeoutMs,
    });
    tlsServer.on('connection', (raw: Socket) => {
      track(raw);
    });
    const refuseTls = (address: string, reason: string) => {
      void auditRejection(services, {
        protocol: 'dimse', sourceAddress: address, credentials: { kind: 'none' }, action: 'dimse.associate',
        eventType: 'Association Rejected', detail: { listener: 'tls' },
      }, new PacsGuardError('PG_ERR_DIMSE_TLS', reason.slice(0, 200))).catch(() => undefined);
    };
    tlsServer.on('secureConnection', (socket: TLSSocket) => {
      const cert = socket.getPeerX509Certificate();
      if (!socket.authorized || !cert) {
        // Nothing of the connection is read: no DICOM stack is attached to it.
        const why = !cert ? 'client presented no certificate' : `client certificate refused: ${String(socket.authorizationError)}`;
        refuseTls(socket.remoteAddress ?? '', `${why}${cert ? ` (subject ${cert.subject.replace(/\n/g, ', ')}, valid to ${cert.validTo})` : ''}`);
        socket.destroy();
        return;
      }
      serve(socket, { fingerprint256: cert.fingerprint256, subject: cert.subject.replace(/\n/g, ', '), subjectAltName: cert.subjectAltName, validTo: cert.validTo });
    });
    // No certificate, one not from our CA, an expired one: the handshake fails, and that is audited.
    tlsServer.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      const parent = (socket as unknown as { _parent?: Socket })._parent;
      refuseTls(socket.remoteAddress ?? parent?.remoteAddress ?? '', `handshake failed: ${err.message}`);
    });
    server = tlsServer;
  } else {
    server = createTcpServer((socket) => {
      if (track(socket)) serve(socket, undefined);
    });
  }
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.host, port: opts.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `${opts.tls ? 'dicom-tls' : 'dicom'}://${shownHost}:${addr.port}`,
    port: addr.port,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
