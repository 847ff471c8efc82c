/**
 * Limits that keep a DICOM listener standing under bad input and floods: a check of every PDU header
 * before the DICOM stack buffers a byte of its body, and counters of open associations in total and
 * per device. dcmjs-dimse itself would buffer a PDU of any announced length (up to 4 GiB) and accept
 * any number of connections; these run in front of it.
 */

/** PS3.8 §9.3: PDU types. */
export const PDU = {
  associateRq: 0x01,
  associateAc: 0x02,
  associateRj: 0x03,
  pData: 0x04,
  releaseRq: 0x05,
  releaseRp: 0x06,
  abort: 0x07,
} as const;

/** Largest A-ASSOCIATE-RQ accepted: 128 presentation contexts of long UIDs and many transfer syntaxes fit. */
export const MAX_ASSOCIATE_RQ_BYTES = 256 * 1024;
/** Release and abort PDUs have a fixed length of 4 (PS3.8 §9.3.6–9.3.8). */
const FIXED_PDU_BYTES = 4;

/** Why a byte stream stopped being a DICOM upper-layer protocol conversation we will follow. */
export interface PduViolation {
  readonly reason: string;
  /** PS3.8 Table 9-26 A-ABORT reason: 1 unrecognized PDU, 2 unexpected PDU, 6 invalid PDU parameter value. */
  readonly abortReason: 1 | 2 | 6;
}

/**
 * Follows PDU framing on a connection (type byte, reserved byte, 32-bit big-endian length) and reports
 * the first PDU that must not be buffered: an unknown type, a length over the limit for its type, or an
 * A-ASSOCIATE-RQ that is not the first PDU. It never holds more than a 6-byte header.
 */
export class PduGuard {
  private header = Buffer.alloc(6);
  private headerFill = 0;
  private bodyLeft = 0;
  private pdus = 0;

  constructor(private readonly maxPDataBytes: number) {}

  /** Feeds received bytes; returns the violation they contain, if any. */
  feed(chunk: Buffer): PduViolation | undefined {
    let at = 0;
    while (at < chunk.length) {
      if (this.bodyLeft > 0) {
        const take = Math.min(this.bodyLeft, chunk.length - at);
        this.bodyLeft -= take;
        at += take;
        continue;
      }
      const take = Math.min(6 - this.headerFill, chunk.length - at);
      chunk.copy(this.header, this.headerFill, at, at + take);
      this.headerFill += take;
      at += take;
      if (this.headerFill < 6) break;
      this.headerFill = 0;
      const type = this.header[0] as number;
      const length = this.header.readUInt32BE(2);
      const violation = this.check(type, length);
      if (violation) return violation;
      this.pdus++;
      this.bodyLeft = length;
    }
    return undefined;
  }

  private check(type: number, length: number): PduViolation | undefined {
    if (type < PDU.associateRq || type > PDU.abort) return { reason: `unknown PDU type 0x${type.toString(16).padStart(2, '0')}`, abortReason: 1 };
    if (this.pdus === 0 && type !== PDU.associateRq) return { reason: `first PDU is type ${type}, not an A-ASSOCIATE-RQ`, abortReason: 2 };
    if (this.pdus > 0 && type === PDU.associateRq) return { reason: 'a second A-ASSOCIATE-RQ on one connection', abortReason: 2 };
    if (type === PDU.associateAc || type === PDU.associateRj) return { reason: `an association acceptor never receives PDU type ${type}`, abortReason: 2 };
    const limit = type === PDU.associateRq ? MAX_ASSOCIATE_RQ_BYTES : type === PDU.pData ? this.maxPDataBytes : FIXED_PDU_BYTES;
    if (length > limit) return { reason: `PDU type ${type} announces ${length} bytes, over the limit of ${limit}`, abortReason: 6 };
    if (type === PDU.pData && length < 6) return { reason: `P-DATA-TF of ${length} bytes cannot hold a PDV`, abortReason: 6 };
    return undefined;
  }
}

/** Counts open associations in total and per device, so no one caller can take every slot. */
export class AssociationSlots {
  private total = 0;
  private readonly perDevice = new Map<string, number>();

  constructor(private readonly maxTotal: number, private readonly maxPerDevice: number) {}

  /** Takes a connection slot; false when the listener is full. */
  openConnection(): boolean {
    if (this.total >= this.maxTotal) return false;
    this.total++;
    return true;
  }

  closeConnection(): void {
    this.total = Math.max(0, this.total - 1);
  }

  /** Takes a slot for an identified device; false when it has as many associations open as it may. */
  openForDevice(device: string): boolean {
    const n = this.perDevice.get(device) ?? 0;
    if (n >= this.maxPerDevice) return false;
    this.perDevice.set(device, n + 1);
    return true;
  }

  closeForDevice(device: string): void {
    const n = (this.perDevice.get(device) ?? 1) - 1;
    if (n <= 0) this.perDevice.delete(device);
    else this.perDevice.set(device, n);
  }

  get open(): number {
    return this.total;
  }
}

/** Bytes of received datasets held at once across every association, against one budget. */
export class ByteBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  /** Takes `n` bytes from the budget; false (and nothing taken) when that would pass the limit. */
  take(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }

  get inUse(): number {
    return this.used;
  }
}

/**
 * Joins received bytes into whole PDUs, so that the DICOM stack gets each PDU in one piece. dcmjs-dimse
 * re-joins a PDU it has only part of with every TCP or TLS chunk that arrives (a 256 KiB P-DATA in 16 KiB
 * TLS records is copied about eight times over); given whole PDUs it copies nothing. Runs after the
 * PduGuard has checked the header, so a PDU it waits for is never longer than the limits allow.
 */
export class PduFramer {
  private parts: Buffer[] = [];
  private have = 0;
  /** The whole PDU's length (header included) once its header is in. */
  private expected: number | undefined;

  /** Feeds received bytes; returns the PDUs they complete, in order, each one Buffer. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.expected === undefined) {
        const take = Math.min(6 - this.have, chunk.length - at);
        this.parts.push(chunk.subarray(at, at + take));
        this.have += take;
        at += take;
        if (this.have < 6) break;
        const header = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, 6);
        this.expected = 6 + header.readUInt32BE(2);
      }
      const take = Math.min(this.expected - this.have, chunk.length - at);
      if (take > 0) this.parts.push(chunk.subarray(at, at + take));
      this.have += take;
      at += take;
      if (this.have === this.expected) {
        out.push(this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.have));
        this.parts = [];
        this.have = 0;
        this.expected = undefined;
      }
    }
    return out;
  }
}
