import { userInfo } from 'node:os';
import type { AuditEvent } from './event.js';
import type { TailCut } from './torn-tail.js';

/** Who an event the log writes about itself is recorded under: the server, or the operator who ran a command. */
export interface AuditActor {
  readonly kind: string;
  readonly id: string;
}

export const SYSTEM_ACTOR: AuditActor = { kind: 'system', id: 'pacsguard' };

/** A spell during which the log could not be written. */
export interface TrailOutage {
  readonly from: Date;
  readonly to: Date;
  readonly error: string;
  /** Requests refused (503 / DICOM 0x0110) because their decision could not have been recorded. */
  readonly refusedRequests: number;
  /** Appends that failed, their events unrecorded (their callers were answered with the failure). */
  readonly lostEvents: number;
  /** Whole records of the failed write that reached the disk although their appends were refused. */
  readonly unacknowledgedRecords: number;
}

const source = { address: '127.0.0.1', zone: 'local', protocol: 'cli' } as const;

// The operating-system account and process, so that even a repair at server start names who ran it.
const runBy = () => ({ osUser: userInfo().username, pid: process.pid });

/** When a torn tail is cut: by the next writer at open, by the running server when the disk recovers, or by the operator. */
export type CutOccasion = 'at open' | 'on recovery' | 'by audit repair';

/** The Security Alert that records a torn tail cut off the log or its checkpoints: what, where, and where it is kept. */
export function tailCutEvent(cut: TailCut, afterSeq: number, actor: AuditActor, how: CutOccasion): AuditEvent {
  return {
    eventType: 'Security Alert', action: 'audit.repair', outcome: 4,
    reason: `cut a torn, never acknowledged final record off ${cut.file} ${how}: ${cut.bytes} bytes at offset ${cut.offset} `
      + `(sha256 ${cut.sha256}), kept in ${cut.evidence}; the chain continues from record ${afterSeq}`,
    subject: actor, source,
    detail: { file: cut.file, offset: cut.offset, bytes: cut.bytes, sha256: cut.sha256, evidence: cut.evidence, afterSeq, ...runBy() },
  };
}

/** The Security Alert that records the end of an outage of the trail, and what it cost. */
export function outageEndedEvent(outage: TrailOutage, actor: AuditActor): AuditEvent {
  const unacknowledged = outage.unacknowledgedRecords > 0 ? `; ${outage.unacknowledgedRecords} records before this one reached the disk though their writes were refused` : '';
  return {
    eventType: 'Security Alert', action: 'audit.recovered', outcome: 4,
    reason: `the audit trail was unavailable from ${outage.from.toISOString()} to ${outage.to.toISOString()} (${outage.error}): `
      + `${outage.refusedRequests} requests refused, ${outage.lostEvents} events could not be recorded${unacknowledged}`,
    subject: actor, source,
    detail: {
      unavailableFrom: outage.from.toISOString(), unavailableTo: outage.to.toISOString(), error: outage.error,
      refusedRequests: outage.refusedRequests, lostEvents: outage.lostEvents, unacknowledgedRecords: outage.unacknowledgedRecords, ...runBy(),
    },
  };
}

/** The record of an explicit `pacsguard audit repair` that found nothing to cut, or was refused. */
export function repairRunEvent(actor: AuditActor, outcome: 0 | 8, reason: string): AuditEvent {
  return { eventType: outcome === 0 ? 'Application Activity' : 'Security Alert', action: 'audit.repair', outcome, reason, subject: actor, source, detail: runBy() };
}
