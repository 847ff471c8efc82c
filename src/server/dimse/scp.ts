import dimse from 'dcmjs-dimse';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { AuditEventType } from '../../audit/index.js';
import { fileMetaHeader } from '../../dicom/index.js';
import { asPacsGuardError, PacsGuardError } from '../../errors.js';
import type { Action, Resource } from '../../policy/index.js';
import type { StagedBlob } from '../../storage/index.js';
import { admit, auditRejection, perform, wasAudited, type Credentials, type EarlyAudit, type Operated, type PathContext } from '../path.js';
import type { Services } from '../services.js';
import { negotiatePresentationContexts } from './association.js';
import { DatasetCollector, EncodedCommandDataset, EncodedDataset } from './encoded.js';
import { findResponses } from './find.js';
import type { PduViolation } from './limits.js';
import type { ListenerContext, Peer } from './listener-context.js';
import { retrieveByGet, retrieveByMove } from './retrieve.js';
import { storeInstance } from './store.js';

const { Status, RejectResult, RejectSource, RejectReason, AbortSource } = dimse.constants;
const { CEchoResponse, CStoreResponse, CFindResponse, CGetResponse, CMoveResponse } = dimse.responses;

type AnyRequest = dimse.requests.Request;

// dcmjs-dimse's own sender, which AssociationScp._sendDimse hands each message to.
export const librarySendDimse = (dimse.Scp.prototype as unknown as { _sendDimse?: (message: SentMessage) => void })._sendDimse as (this: dimse.Scp, message: SentMessage) => void;

/** What dcmjs-dimse's sender is given: a request or response (and its presentation context). */
interface SentMessage {
  readonly command: { getCommandDataset(): dimse.Dataset; setCommandDataset(dataset: dimse.Dataset): void };
}

/**
 * One association, from A-ASSOCIATE-RQ to release or abort. Every DIMSE request goes through the one
 * path (admit → perform) with the device's credentials, exactly like an HTTP request; this class only
 * translates between DIMSE messages and those calls, and keeps the protocol honest (one operation at a
 * time, as we negotiate no asynchronous operations).
 */
export class AssociationScp extends dimse.Scp {
  private readonly id = randomBytes(6).toString('hex');
  private credentials: Credentials = { kind: 'none' };
  private callingAe = '';
  private deviceSlot: string | undefined;
  private accepted = false;
  private busy = false;
  private closed = false;
  private cancelled = false;
  private aborting = false;
  /** The C-STORE dataset being received, holding bytes against the listener's shared budget. */
  private collector: DatasetCollector | undefined;
  /** The C-STORE whose dataset is arriving, until its last byte is in: what a hang-up abandons. */
  private receiving: { sopInstanceUid: string; sopClassUid: string; collector: DatasetCollector } | undefined;
  private storeAllowed = false;

  constructor(socket: Socket | TLSSocket, private readonly ctx: ListenerContext, private readonly peer: Peer) {
    super(socket, {
      connectTimeout: ctx.limits.idleTimeoutMs,
      associationTimeout: ctx.limits.associationTimeoutMs,
      pduTimeout: ctx.limits.idleTimeoutMs,
    });
    // dcmjs-dimse's timers run only for connections it marks connected (its own Server does this).
    const self = this as unknown as { connected: boolean; connectedTime: number };
    self.connected = true;
    self.connectedTime = Date.now();
    this.on('networkError', (err: Error) => {
      void this.protocolFailure(`connection error: ${err.message}`);
    });
    socket.once('close', () => this.release());
  }

  /** Detail every audit event of this association carries, to tie them together. */
  private detail(extra: Record<string, string | number | boolean> = {}): Record<string, string | number | boolean> {
    return { association: this.id, listener: this.ctx.kind, callingAe: this.callingAe, ...extra };
  }

  private get socketOf(): Socket {
    return (this as unknown as { socket: Socket }).socket;
  }

  /** Ends the connection for a PDU the guard refused: A-ABORT, audited. */
  async refusePdu(violation: PduViolation): Promise<void> {
    await this.abortAudited(violation.abortReason, violation.reason);
  }

  /** Audits why, then sends A-ABORT and closes: the record is durable before the peer learns the outcome. */
  private async abortAudited(abortReason: number, reason: string): Promise<void> {
    if (this.closed || this.aborting) return;
    this.aborting = true;
    this.socketOf.pause();
    await this.auditFailure('dimse.associate', 'Association Rejected', new PacsGuardError('PG_ERR_DIMSE_PROTOCOL', reason));
    this.sendAbortSafe(AbortSource.ServiceProvider, abortReason);
    this.destroy();
  }

  private sendAbortSafe(source: number, reason: number): void {
    try {
      if ((this as unknown as { association?: unknown }).association) this.sendAbort(source, reason);
      else this.socketOf.write(Buffer.from([0x07, 0, 0, 0, 0, 4, 0, 0, source, reason]));
    } catch {
      // The socket is going anyway.
    }
  }

  private destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.socketOf.destroy();
    this.release();
  }

  private release(): void {
    this.closed = true;
    this.recordAbandonedStore();
    this.collector?.release();
    this.collector = undefined;
    if (this.deviceSlot !== undefined) {
      this.ctx.slots.closeForDevice(this.deviceSlot);
      this.deviceSlot = undefined;
    }
  }

  /**
   * A connection that ends while a C-STORE dataset is still arriving (the peer hung up, the network
   * failed, or we aborted) leaves a record of the store it abandoned: which instance, from whom, how
   * far it got. Without it the trail shows an association and then nothing, and a modality that
   * believes it sent a study cannot be told from one whose transfer died half way.
   */
  private recordAbandonedStore(): void {
    const store = this.receiving;
    this.receiving = undefined;
    if (!store) return;
    const by = this.aborting ? 'PacsGuard aborted the association' : 'the connection closed';
    const error = new PacsGuardError('PG_ERR_DIMSE_ABANDONED', `C-STORE of ${store.sopInstanceUid || 'an unnamed instance'} abandoned: ${by} after ${store.collector.received} bytes of its dataset`);
    void auditRejection(this.ctx.services, {
      protocol: 'dimse', sourceAddress: this.peer.address, credentials: this.credentials, action: 'dimse.store', eventType: 'DICOM Instances Transferred',
      ...(store.sopInstanceUid ? { resource: { sopUid: store.sopInstanceUid } } : {}),
      detail: this.detail({
        sopClassUid: store.sopClassUid, bytesReceived: store.collector.received, endedBy: this.aborting ? 'server' : 'peer',
        ...(this.peer.certificate?.subject ? { certificateSubject: this.peer.certificate.subject } : {}),
        ...(this.peer.certificate ? { certificateFingerprint: this.peer.certificate.fingerprint256 } : {}),
      }),
    }, error).catch(() => undefined);
  }

  private async protocolFailure(reason: string): Promise<void> {
    await this.abortAudited(0, reason);
  }

  /** Audits something refused outside admit/perform (protocol errors, limits), best effort. */
  private async auditFailure(action: string, eventType: AuditEventType, error: PacsGuardError): Promise<void> {
    await auditRejection(this.ctx.services, {
      protocol: 'dimse', sourceAddress: this.peer.address, credentials: this.credentials, action, eventType, detail: this.detail(),
    }, error).catch(() => undefined);
  }

  private reject(result: number, source: number, reason: number): void {
    try {
      this.sendAssociationReject(result, source, reason);
    } finally {
      // Give the reject a moment to leave, then close whatever the peer does.
      this.socketOf.end();
      setTimeout(() => this.destroy(), 1000).unref();
    }
  }

  override associationRequested(association: dimse.association.Association): void {
    void this.admitAssociation(association).catch(async (err: unknown) => {
      this.reject(RejectResult.Transient, RejectSource.ServiceProviderPresentation, RejectReason.TemporaryCongestion);
      if (!wasAudited(err)) await this.auditFailure('dimse.associate', 'Association Rejected', asPacsGuardError(err));
    });
  }

  private async admitAssociation(association: dimse.association.Association): Promise<void> {
    this.callingAe = association.getCallingAeTitle().trim();
    const calledAe = association.getCalledAeTitle().trim();
    this.credentials = this.peer.certificate
      ? { kind: 'device-certificate', callingAe: this.callingAe, sourceAddress: this.peer.address, certificate: this.peer.certificate }
      : { kind: 'device-legacy', callingAe: this.callingAe, sourceAddress: this.peer.address };
    if (!this.peer.withinLimit) {
      this.reject(RejectResult.Transient, RejectSource.ServiceProviderPresentation, RejectReason.LocalLimitExceeded);
      await this.auditFailure('dimse.associate', 'Association Rejected', new PacsGuardError('PG_ERR_DIMSE_LIMIT', `${this.ctx.limits.maxAssociations} connections open already`));
      return;
    }
    if (calledAe !== this.ctx.aeTitle) {
      this.reject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CalledAeNotRecognized);
      await this.auditFailure('dimse.associate', 'Association Rejected', new PacsGuardError('PG_ERR_DIMSE_CALLED_AE', `called AE ${calledAe} is not ${this.ctx.aeTitle}`));
      return;
    }
    let ctx: PathContext;
    try {
      ctx = await admit(this.ctx.services, {
        protocol: 'dimse', sourceAddress: this.peer.address, credentials: this.credentials, action: 'dimse.associate',
        eventType: 'User Authentication', detail: this.detail({ calledAe }),
      });
    } catch (err) {
      const e = asPacsGuardError(err);
      // PS3.8 Table 9-21: an unidentified caller is "calling AE title not recognized"; a refused one gets no reason.
      const reason = e.code === 'PG_ERR_AUTH_REQUIRED' || e.code === 'PG_ERR_AUTH_FAILED' ? RejectReason.CallingAeNotRecognized : RejectReason.NoReasonGiven;
      this.reject(RejectResult.Permanent, RejectSource.ServiceUser, reason);
      if (!wasAudited(err)) await this.auditFailure('dimse.associate', 'Association Rejected', e);
      return;
    }
    const subject = ctx.subject;
    const device = subject.kind === 'device' ? subject.aeTitle : this.callingAe;
    if (!this.ctx.slots.openForDevice(device)) {
      this.reject(RejectResult.Transient, RejectSource.ServiceProviderPresentation, RejectReason.LocalLimitExceeded);
      await this.auditFailure('dimse.associate', 'Association Rejected', new PacsGuardError('PG_ERR_DIMSE_LIMIT', `device ${device} holds ${this.ctx.limits.maxAssociationsPerDevice} associations already`));
      return;
    }
    this.deviceSlot = device;
    // Decided once here so a device that may not store does not make us hold its datasets before the
    // per-request decision refuses them (that decision still runs, and is audited, for every C-STORE).
    this.storeAllowed = subject.kind === 'device' && subject.services.includes('store');
    const accepted = negotiatePresentationContexts(association);
    await perform(this.ctx.services, ctx, async () => ({
      value: undefined,
      reason: `association accepted from ${this.callingAe} (${accepted} presentation contexts)`,
      detail: { acceptedContexts: accepted },
    }));
    if (subject.kind === 'device') await this.ctx.services.devices.touch(Number(subject.id)).catch(() => undefined);
    if (this.closed) return;
    this.accepted = true;
    this.sendAssociationAccept();
  }

  /** Announces our own maximum PDU length (not the peer's), then sends within the peer's. */
  override sendAssociationAccept(): void {
    const association = (this as unknown as { association: dimse.association.Association }).association;
    const peerMax = association.getMaxPduLength();
    association.setMaxPduLength(this.ctx.limits.maxPduBytes);
    super.sendAssociationAccept();
    association.setMaxPduLength(peerMax);
  }

  override associationReleaseRequested(): void {
    if (!this.closed) this.sendAssociationReleaseResponse();
  }

  /**
   * Every DIMSE message we send passes here (responses given to the library's callbacks and sendResponse
   * alike): its command set is encoded by encodeCommandSet rather than dcmjs's general writer. dcmjs-dimse
   * declares no such hook; the tests check that this method is still the one it sends through.
   */
  _sendDimse(message: SentMessage): void {
    const command = message.command.getCommandDataset();
    if (!(command instanceof EncodedCommandDataset)) message.command.setCommandDataset(new EncodedCommandDataset(command.getElements()));
    librarySendDimse.call(this, message);
  }

  override abort(): void {
    this.destroy();
  }

  override cCancelRequest(): void {
    this.cancelled = true;
  }

  /**
   * Runs one DIMSE request on the one path. Returns the operation's value, or the error (already
   * audited) whose DICOM status the response carries.
   */
  private async onPath<T>(
    request: { action: Action; eventType: AuditEventType; resource?: Resource; detail?: Record<string, string | number | boolean> },
    operate: (ctx: PathContext, early: EarlyAudit) => Promise<Operated<T>>,
  ): Promise<{ ok: true; value: T } | { ok: false; error: PacsGuardError }> {
    try {
      const ctx = await admit(this.ctx.services, {
        protocol: 'dimse', sourceAddress: this.peer.address, credentials: this.credentials, action: request.action,
        eventType: request.eventType, resource: request.resource, detail: this.detail(request.detail),
      });
      return { ok: true, value: await perform(this.ctx.services, ctx, (early) => operate(ctx, early)) };
    } catch (err) {
      const error = asPacsGuardError(err);
      if (!wasAudited(err)) await this.auditFailure(request.action, request.eventType, error);
      return { ok: false, error };
    }
  }

  /**
   * One operation at a time: we negotiate no asynchronous operations window, so a second request before
   * the first was answered is a protocol violation (and a way to make us buffer without bound).
   */
  private begin(request: AnyRequest): boolean {
    if (!this.accepted || this.closed) return false;
    if (this.busy) {
      void this.protocolFailure(`request ${request.getMessageId()} sent before the previous one was answered`);
      return false;
    }
    this.busy = true;
    this.cancelled = false;
    return true;
  }

  private end(): void {
    this.busy = false;
  }

  /** Keeps the library's PDU timer quiet while we work on a long operation that the peer waits for. */
  private keepAlive(): () => void {
    const self = this as unknown as { lastPduTime?: number };
    const timer = setInterval(() => {
      if (self.lastPduTime !== undefined) self.lastPduTime = Date.now();
    }, 1000);
    return () => clearInterval(timer);
  }

  /** N-services are not offered (no presentation context for them is accepted): unrecognized, audited. */
  private unsupported<R extends dimse.responses.Response>(request: AnyRequest, response: R, callback: (response: R) => void, what: string): void {
    if (!this.begin(request)) return;
    void (async () => {
      await this.auditFailure('dimse.unsupported', 'Application Activity', new PacsGuardError('PG_ERR_DIMSE_UNSUPPORTED', `${what} is not offered`));
      response.setStatus(0x0211);
      this.end();
      if (!this.closed) callback(response);
    })();
  }

  override nCreateRequest(request: dimse.requests.NCreateRequest, callback: (response: dimse.responses.NCreateResponse) => void): void {
    this.unsupported(request, dimse.responses.NCreateResponse.fromRequest(request), callback, 'N-CREATE');
  }

  override nActionRequest(request: dimse.requests.NActionRequest, callback: (response: dimse.responses.NActionResponse) => void): void {
    this.unsupported(request, dimse.responses.NActionResponse.fromRequest(request), callback, 'N-ACTION');
  }

  override nDeleteRequest(request: dimse.requests.NDeleteRequest, callback: (response: dimse.responses.NDeleteResponse) => void): void {
    this.unsupported(request, dimse.responses.NDeleteResponse.fromRequest(request), callback, 'N-DELETE');
  }

  override nEventReportRequest(request: dimse.requests.NEventReportRequest, callback: (response: dimse.responses.NEventReportResponse) => void): void {
    this.unsupported(request, dimse.responses.NEventReportResponse.fromRequest(request), callback, 'N-EVENT-REPORT');
  }

  override nGetRequest(request: dimse.requests.NGetRequest, callback: (response: dimse.responses.NGetResponse) => void): void {
    this.unsupported(request, dimse.responses.NGetResponse.fromRequest(request), callback, 'N-GET');
  }

  override nSetRequest(request: dimse.requests.NSetRequest, callback: (response: dimse.responses.NSetResponse) => void): void {
    this.unsupported(request, dimse.responses.NSetResponse.fromRequest(request), callback, 'N-SET');
  }

  override cEchoRequest(request: dimse.requests.CEchoRequest, callback: (response: dimse.responses.CEchoResponse) => void): void {
    if (!this.begin(request)) return;
    void (async () => {
      const result = await this.onPath({ action: 'dimse.echo', eventType: 'Application Activity' }, async () => ({ value: undefined, reason: 'C-ECHO answered' }));
      const response = CEchoResponse.fromRequest(request);
      response.setStatus(result.ok ? Status.Success : result.error.spec.dicomStatus);
      if (!result.ok) response.setErrorComment(result.error.detail.slice(0, 64));
      this.end();
      if (!this.closed) callback(response);
    })();
  }

  /**
   * The dataset of a C-STORE is collected as it arrives and, when this device may store at all, also
   * written to a staged blob behind the Part 10 header it will have: hashing and writing overlap the
   * transfer, and ingest is left with parsing, the syncs and the index (it places the staged blob when
   * it stores the file as received, and writes the file itself otherwise).
   */
  override createStoreWritableStream(context: dimse.association.PresentationContext, request: dimse.requests.CStoreRequest): DatasetCollector {
    this.collector?.release();
    const header = fileMetaHeader({
      sopClassUid: request.getAffectedSopClassUid() ?? '',
      sopInstanceUid: request.getAffectedSopInstanceUid() ?? '',
      transferSyntaxUid: context.getAcceptedTransferSyntaxUid() ?? '',
      sourceAe: this.callingAe,
    });
    let staged: StagedBlob | undefined;
    // Below the disk reserve the store will be refused: its bytes are not written into the headroom.
    if (this.storeAllowed && this.ctx.services.capacity.state.state === 'accepting') {
      staged = this.ctx.services.blobs.stage();
      staged.append(header);
    }
    this.collector = new DatasetCollector(this.ctx.limits.maxDatasetBytes, !this.storeAllowed, this.ctx.budget, header, staged);
    this.receiving = { sopInstanceUid: request.getAffectedSopInstanceUid() ?? '', sopClassUid: request.getAffectedSopClassUid() ?? '', collector: this.collector };
    return this.collector;
  }

  override createDatasetFromStoreWritableStream(writable: DatasetCollector, context: dimse.association.PresentationContext, callback: (dataset: dimse.Dataset) => void): void {
    // The whole dataset is in: from here the C-STORE ends in a response (and its own audit record).
    if (this.receiving?.collector === writable && !writable.overflowed) this.receiving = undefined;
    if (writable.overflowed) {
      void this.protocolFailure(writable.overflowReason);
      return;
    }
    callback(new EncodedDataset(writable.take(), context.getAcceptedTransferSyntaxUid() ?? '', writable.takeReceived()));
  }

  override cStoreRequest(request: dimse.requests.CStoreRequest, callback: (response: dimse.responses.CStoreResponse) => void): void {
    // However the request ends (stored, refused, denied, failed or out of turn), its staged copy goes;
    // once ingest placed it, this does nothing.
    const dropStaged = () => {
      const dataset = request.getDataset();
      if (dataset instanceof EncodedDataset) void dataset.received?.staged?.discard();
    };
    if (!this.begin(request)) {
      dropStaged();
      return;
    }
    void (async () => {
      const sopUid = request.getAffectedSopInstanceUid();
      const result = await this.onPath(
        { action: 'dimse.store', eventType: 'DICOM Instances Transferred', resource: { sopUid }, detail: { sopClassUid: request.getAffectedSopClassUid() ?? '' } },
        (ctx, early) => storeInstance(this.ctx.services, ctx, request, early),
      );
      dropStaged();
      this.collector?.release();
      this.collector = undefined;
      const response = CStoreResponse.fromRequest(request);
      const status = result.ok ? result.value.status : result.error.spec.dicomStatus;
      const comment = result.ok ? result.value.comment : result.error.detail.slice(0, 64);
      response.setStatus(status);
      if (comment) response.setErrorComment(comment);
      this.end();
      if (!this.closed) callback(response);
    })();
  }

  override cFindRequest(request: dimse.requests.CFindRequest, callback: (responses: Array<dimse.responses.CFindResponse>) => void): void {
    if (!this.begin(request)) return;
    void (async () => {
      const stop = this.keepAlive();
      const result = await this.onPath(
        { action: 'dimse.find', eventType: 'Query', detail: { sopClassUid: request.getAffectedSopClassUid() ?? '' } },
        () => findResponses(this.ctx.services, request, () => this.cancelled),
      );
      stop();
      const final = CFindResponse.fromRequest(request);
      final.setAffectedSopClassUid(request.getAffectedSopClassUid());
      if (result.ok) {
        final.setStatus(result.value.cancelled ? Status.Cancel : Status.Success);
        this.end();
        if (!this.closed) callback([...result.value.pending, final]);
      } else {
        final.setStatus(result.error.spec.dicomStatus);
        final.setErrorComment(result.error.detail.slice(0, 64));
        this.end();
        if (!this.closed) callback([final]);
      }
    })();
  }

  override cGetRequest(request: dimse.requests.CGetRequest, callback: (responses: Array<dimse.responses.CGetResponse>) => void): void {
    if (!this.begin(request)) return;
    void (async () => {
      const stop = this.keepAlive();
      // dcmjs-dimse's callback may be called once: pending responses go out directly, the final one through it.
      const send = (responses: dimse.responses.CGetResponse[]) => {
        if (!this.closed) for (const r of responses) this.sendResponse(request, r);
      };
      const finish = (response: dimse.responses.CGetResponse) => {
        if (!this.closed) callback([response]);
      };
      const result = await this.onPath(
        { action: 'dimse.get', eventType: 'DICOM Instances Transferred', detail: { sopClassUid: request.getAffectedSopClassUid() ?? '' } },
        () => retrieveByGet(this.ctx.services, this, request, send, () => this.cancelled || this.closed),
      );
      stop();
      if (!result.ok) {
        const final = CGetResponse.fromRequest(request);
        final.setAffectedSopClassUid(request.getAffectedSopClassUid());
        final.setStatus(result.error.spec.dicomStatus);
        final.setErrorComment(result.error.detail.slice(0, 64));
        finish(final);
      } else {
        finish(result.value);
      }
      this.end();
    })();
  }

  override cMoveRequest(request: dimse.requests.CMoveRequest, callback: (responses: Array<dimse.responses.CMoveResponse>) => void): void {
    if (!this.begin(request)) return;
    void (async () => {
      const stop = this.keepAlive();
      // dcmjs-dimse's callback may be called once: pending responses go out directly, the final one through it.
      const send = (responses: dimse.responses.CMoveResponse[]) => {
        if (!this.closed) for (const r of responses) this.sendResponse(request, r);
      };
      const finish = (response: dimse.responses.CMoveResponse) => {
        if (!this.closed) callback([response]);
      };
      const destination = String(request.getCommandDataset().getElement('MoveDestination') ?? '').trim();
      // C-MOVE to an arbitrary AE is an exfiltration path: a destination must be a registered device
      // with a port to send to. An unknown one is refused at once (A801), before anything is read.
      const known = await this.ctx.services.devices.findByAe(destination).catch(() => undefined);
      if (!known || known.revokedAt !== null || known.port === 0) {
        await this.auditFailure('dimse.move', 'DICOM Instances Transferred', new PacsGuardError('PG_ERR_MOVE_DESTINATION_UNKNOWN', `${destination || '(empty)'} is not a registered C-MOVE destination`));
        stop();
        const final = CMoveResponse.fromRequest(request);
        final.setAffectedSopClassUid(request.getAffectedSopClassUid());
        final.setStatus(Status.MoveDestinationUnknown);
        final.setErrorComment(`unknown destination ${destination}`.slice(0, 64));
        finish(final);
        this.end();
        return;
      }
      const result = await this.onPath(
        { action: 'dimse.move', eventType: 'DICOM Instances Transferred', resource: { moveDestination: destination }, detail: { moveDestination: destination, sopClassUid: request.getAffectedSopClassUid() ?? '' } },
        () => retrieveByMove(this.ctx, request, destination, this.callingAe, send, () => this.cancelled || this.closed),
      );
      stop();
      if (!result.ok) {
        const final = CMoveResponse.fromRequest(request);
        final.setAffectedSopClassUid(request.getAffectedSopClassUid());
        final.setStatus(result.error.spec.dicomStatus);
        final.setErrorComment(result.error.detail.slice(0, 64));
        finish(final);
      } else {
        finish(result.value);
      }
      this.end();
    })();
  }
}
