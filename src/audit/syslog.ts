import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { connect, type TLSSocket } from 'node:tls';
import type { AuditRecord } from './event.js';
import { toDicomAuditXml } from './export.js';

/** Where audit records go: a SIEM's RFC 5425 syslog-over-TLS receiver, with mutual TLS. */
export interface SyslogTarget {
  readonly host: string;
  readonly port: number;
  /** PEM CA(s) that vouch for the receiver's certificate. */
  readonly ca: string;
  /** PEM certificate and key PacsGuard presents to the receiver. */
  readonly cert: string;
  readonly key: string;
  /** AuditSourceID in the messages (the server's AE title). */
  readonly auditSourceId: string;
}

/** How far delivery got, kept beside the log so a restart resumes where it stopped. */
interface Cursor {
  seq: number;
  offset: number;
}

const MAX_BATCH_BYTES = 1 << 20;
// RFC 5424 §6.2.1: facility 10 (security/authorization), severity notice for success, warning otherwise.
const FACILITY = 10;

/** RFC 5424 message carrying the PS3.15 audit message XML, framed by octet counting (RFC 5425 §4.3). */
export function syslogFrame(r: AuditRecord, auditSourceId: string, host = osHostname()): Buffer {
  const severity = r.event.outcome === 0 ? 5 : 4;
  // IHE ITI TF-2 3.20.7.1: MSGID "IHE+RFC-3881"; the structured data lets a SIEM check order and chain.
  const msg = `<${FACILITY * 8 + severity}>1 ${r.time} ${host} pacsguard ${process.pid} IHE+RFC-3881 [pacsguard@32473 seq="${r.seq}" hash="${r.hash}"] \ufeff${toDicomAuditXml(r, auditSourceId)}`;
  const body = Buffer.from(msg, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `), body]);
}

/**
 * Forwards the audit log to a SIEM. The log itself is the durable queue: the forwarder keeps a cursor
 * (sequence number and byte offset) and sends whatever lies beyond it, so when the receiver is down
 * nothing is lost or reordered; when it returns, delivery resumes from the cursor. Delivery is
 * at-least-once: after a broken connection the last batch may be sent again, and the seq in each
 * message lets the receiver drop the repeat.
 */
export class SyslogForwarder {
  private socket: TLSSocket | null = null;
  private cursor: Cursor = { seq: 0, offset: 0 };
  private pumping = false;
  private again = false;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryMs = 500;
  /** Errors seen while the receiver was away, for the status API and logs. */
  lastError: string | null = null;

  constructor(private readonly logPath: string, private readonly cursorPath: string, private readonly target: SyslogTarget) {}

  /** Loads the cursor and starts delivering. */
  async start(): Promise<void> {
    try {
      this.cursor = JSON.parse(await readFile(this.cursorPath, 'utf8')) as Cursor;
    } catch {
      this.cursor = { seq: 0, offset: 0 };
    }
    this.notify();
  }

  /** The log has grown: deliver what is new (called for every durable record). */
  notify(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    void this.pump();
  }

  /** Records delivered so far (by sequence number). */
  get delivered(): number {
    return this.cursor.seq;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    while (this.pumping) await new Promise((r) => setTimeout(r, 5));
    this.socket?.destroy();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      do {
        this.again = false;
        const socket = this.socket ?? (await this.connect());
        for (;;) {
          const batch = await this.readBatch();
          if (batch.frames.length === 0) break;
          await new Promise<void>((ok, fail) => socket.write(Buffer.concat(batch.frames), (err) => (err ? fail(err) : ok())));
          this.cursor = batch.next;
          await writeFile(this.cursorPath, JSON.stringify(this.cursor));
        }
      } while (this.again && !this.stopped);
      this.retryMs = 500;
    } catch (err) {
      this.lastError = (err as Error).message;
      this.socket?.destroy();
      this.socket = null;
      if (!this.stopped) {
        // The receiver is away: try again later, backing off to at most 30 s between attempts.
        this.retryTimer = setTimeout(() => this.notify(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, 30_000);
      }
    } finally {
      this.pumping = false;
    }
  }

  private connect(): Promise<TLSSocket> {
    return new Promise((ok, fail) => {
      const socket = connect({
        host: this.target.host, port: this.target.port, ca: this.target.ca, cert: this.target.cert, key: this.target.key,
        minVersion: 'TLSv1.2', servername: /^[0-9.:]+$/.test(this.target.host) ? undefined : this.target.host,
      });
      socket.setNoDelay(true);
      socket.once('secureConnect', () => {
        socket.removeListener('error', fail);
        socket.on('error', (err) => {
          this.lastError = err.message;
          socket.destroy();
        });
        socket.on('close', () => {
          if (this.socket === socket) this.socket = null;
          // A receiver that went away comes back to an idle forwarder: retry on the next record or timer.
          if (!this.stopped && !this.pumping) this.retryTimer = setTimeout(() => this.notify(), this.retryMs);
        });
        this.socket = socket;
        ok(socket);
      });
      socket.once('error', fail);
    });
  }

  /** Reads whole records beyond the cursor, up to a batch size. */
  private async readBatch(): Promise<{ frames: Buffer[]; next: Cursor }> {
    const { size } = await stat(this.logPath);
    if (size <= this.cursor.offset) return { frames: [], next: this.cursor };
    const length = Math.min(size - this.cursor.offset, MAX_BATCH_BYTES);
    const fh = await open(this.logPath, 'r');
    const buf = Buffer.alloc(length);
    try {
      await fh.read(buf, 0, length, this.cursor.offset);
    } finally {
      await fh.close();
    }
    const frames: Buffer[] = [];
    let consumed = 0;
    let seq = this.cursor.seq;
    for (;;) {
      const nl = buf.indexOf(0x0a, consumed);
      if (nl < 0) break;
      const line = buf.subarray(consumed, nl).toString('utf8');
      consumed = nl + 1;
      if (line.trim() === '') continue;
      const r = JSON.parse(line) as AuditRecord;
      frames.push(syslogFrame(r, this.target.auditSourceId));
      seq = r.seq;
    }
    return { frames, next: { seq, offset: this.cursor.offset + consumed } };
  }
}
