import dimse from 'dcmjs-dimse';
import { X509Certificate } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { aeTitlesFromSubjectAltName } from '../../identity/index.js';
import { EncodedDataset } from './encoded.js';

const { Association } = dimse.association;
const { CStoreRequest } = dimse.requests;
const { PresentationContextResult } = dimse.constants;

/** PS3.8 §9.3.2.2: presentation context IDs are odd numbers 1-255, so at most 128 contexts. */
export const MAX_PROPOSED_CONTEXTS = 128;

/**
 * Mutual TLS for an outgoing association to an enrolled device: we present the server's certificate, and
 * accept only the certificate this device was enrolled with (its SHA-256 fingerprint) for its AE title, so
 * a C-MOVE never hands images to whoever answers at the registered address.
 */
export interface OutgoingTls {
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
  readonly expectFingerprint256: string;
}

/** Why a destination's certificate is not the one enrolled for its AE title, or undefined when it is. */
export function destinationCertificateProblem(peer: PeerCertificate, calledAe: string, expectFingerprint256: string): string | undefined {
  if (!peer.raw) return `${calledAe} presented no certificate`;
  const cert = new X509Certificate(peer.raw);
  if (!aeTitlesFromSubjectAltName(cert.subjectAltName).includes(calledAe)) return `the certificate presented at ${calledAe}'s address does not bind AE title ${calledAe}`;
  if (cert.fingerprint256 !== expectFingerprint256) return `the certificate presented by ${calledAe} is not the one it was enrolled with`;
  return undefined;
}

/**
 * An outgoing association that sends C-STORE requests, one at a time, each awaited: the SCU side of
 * C-MOVE. Built on dcmjs-dimse's network layer with our own socket (TCP_NODELAY, timeouts) and with
 * datasets sent as stored, never re-encoded.
 */
export class StoreScu {
  private constructor(
    private readonly network: dimse.Scp,
    private readonly socket: Socket,
    private readonly association: dimse.association.Association,
  ) {}

  /** Connects and negotiates one context per SOP class and transfer syntax the instances need. */
  static async open(opts: {
    host: string; port: number; callingAe: string; calledAe: string;
    contexts: ReadonlyArray<{ sopClassUid: string; transferSyntaxUids: readonly string[] }>; timeoutMs: number;
    tls?: OutgoingTls;
    /** The local address to connect from (a multi-homed server's interface toward the destination). */
    localAddress?: string;
  }): Promise<StoreScu> {
    const tls = opts.tls;
    // The CA verifies the chain; the host name is not checked (devices are known by address, often an IP
    // without a name), the enrolled fingerprint and AE title binding are, once the handshake is done.
    const socket: Socket = tls
      ? tlsConnect({ host: opts.host, port: opts.port, key: tls.key, cert: tls.cert, ca: tls.ca, minVersion: 'TLSv1.2', checkServerIdentity: () => undefined, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) })
      : connect({ host: opts.host, port: opts.port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    socket.setNoDelay(true);
    const network = new dimse.Scp(socket, { connectTimeout: opts.timeoutMs, associationTimeout: opts.timeoutMs, pduTimeout: opts.timeoutMs });
    const association = new Association(opts.callingAe, opts.calledAe);
    for (const c of opts.contexts.slice(0, MAX_PROPOSED_CONTEXTS)) {
      const id = association.addPresentationContext(c.sopClassUid);
      for (const ts of c.transferSyntaxUids) association.addTransferSyntaxToPresentationContext(id, ts);
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`no answer from ${opts.calledAe} at ${opts.host}:${opts.port} in ${opts.timeoutMs} ms`)), opts.timeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      socket.once('error', (err) => fail(new Error(`cannot reach ${opts.calledAe} at ${opts.host}:${opts.port}: ${err.message}`)));
      socket.once(tls ? 'secureConnect' : 'connect', () => {
        if (tls) {
          const problem = destinationCertificateProblem((socket as import('node:tls').TLSSocket).getPeerCertificate(), opts.calledAe, tls.expectFingerprint256);
          if (problem) return fail(new Error(problem));
        }
        (network as unknown as { connected: boolean; connectedTime: number }).connected = true;
        (network as unknown as { connectedTime: number }).connectedTime = Date.now();
        network.sendAssociationRequest(association);
      });
      network.once('associationAccepted', () => {
        clearTimeout(timer);
        resolve();
      });
      network.once('associationRejected', (r: { result: number; source: number; reason: number }) => fail(new Error(`${opts.calledAe} rejected the association (result ${r.result}, source ${r.source}, reason ${r.reason})`)));
      network.once('networkError', (err: Error) => fail(err));
      network.once('close', () => fail(new Error(`${opts.calledAe} closed the connection during association`)));
    });
    socket.on('error', () => undefined);
    return new StoreScu(network, socket, association);
  }

  /** True when the destination accepted a context for this SOP class in this transfer syntax. */
  accepts(sopClassUid: string, transferSyntaxUid: string): boolean {
    return this.association.getPresentationContexts().some(({ context }) =>
      context.getAbstractSyntaxUid() === sopClassUid && context.getResult() === PresentationContextResult.Accept && context.getAcceptedTransferSyntaxUid() === transferSyntaxUid);
  }

  /** Sends one instance (its dataset as stored) and resolves with the destination's status. */
  store(
    dataset: Buffer,
    meta: { sopClassUid: string; sopInstanceUid: string; transferSyntaxUid: string; moveOriginator?: { aeTitle: string; messageId: number } },
    timeoutMs: number,
  ): Promise<number> {
    return sendStore(this.network, dataset, meta, timeoutMs);
  }

  /** Releases the association (A-RELEASE), closing the connection whatever the peer does. */
  async release(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, 5000);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.network.once('associationReleaseResponse', done);
      this.network.once('close', done);
      try {
        this.network.sendAssociationReleaseRequest();
      } catch {
        done();
      }
    });
    this.socket.destroy();
  }
}

/**
 * Sends one C-STORE request on a network (our outgoing association, or the caller's own for C-GET) and
 * resolves with the response status. The request is dropped from dcmjs-dimse's pending list once
 * answered, so a long retrieve does not keep every dataset it sent.
 */
export function sendStore(
  network: dimse.Scp,
  dataset: Buffer,
  meta: { sopClassUid: string; sopInstanceUid: string; transferSyntaxUid: string; moveOriginator?: { aeTitle: string; messageId: number } },
  timeoutMs: number,
): Promise<number> {
  const request = new CStoreRequest(new EncodedDataset(dataset, meta.transferSyntaxUid));
  request.setAffectedSopClassUid(meta.sopClassUid);
  request.setAffectedSopInstanceUid(meta.sopInstanceUid);
  if (meta.moveOriginator) {
    // PS3.7 9.3.1.1: a C-STORE sub-operation of a C-MOVE names the AE and message it serves.
    request.getCommandDataset().setElement('MoveOriginatorApplicationEntityTitle', meta.moveOriginator.aeTitle);
    (request.getCommandDataset() as unknown as { setElement(k: string, v: unknown): void }).setElement('MoveOriginatorMessageID', meta.moveOriginator.messageId);
  }
  return new Promise<number>((resolve, reject) => {
    const internals = network as unknown as { pending: unknown[] };
    const finish = (fn: () => void) => {
      clearTimeout(timer);
      network.off('close', onClose);
      internals.pending = internals.pending.filter((r) => r !== request);
      request.setDataset(undefined as unknown as dimse.Dataset);
      fn();
    };
    const onClose = () => finish(() => reject(new Error('association closed before the C-STORE response')));
    const timer = setTimeout(() => finish(() => reject(new Error(`no C-STORE response in ${timeoutMs} ms`))), timeoutMs);
    network.once('close', onClose);
    request.on('response', (response: dimse.responses.CStoreResponse) => {
      finish(() => resolve(response.getStatus()));
    });
    network.sendRequests(request);
  });
}
