import Database from 'better-sqlite3';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ERRORS, type ErrorCode } from '../errors.js';
import type { AuditRecord } from './event.js';

/**
 * When the hospital works; an access outside it is "out of hours" for the auditor. Days are ISO weekdays
 * (1 Monday … 7 Sunday), times local to `timeZone` (an IANA name), `end` exclusive.
 */
export interface WorkingHours {
  readonly timeZone: string;
  readonly days: readonly number[];
  readonly start: string;
  readonly end: string;
}

/** What an auditor can ask of the trail; every field narrows, none is required. */
export interface AuditQuery {
  readonly patientId?: string;
  readonly studyUid?: string;
  /** A subject as the trail names it: `user:alice`, `device:CT01`. */
  readonly subject?: string;
  readonly subjectKind?: 'user' | 'device' | 'anonymous';
  readonly from?: Date;
  readonly to?: Date;
  readonly actions?: readonly string[];
  readonly eventType?: string;
  /** success: outcome 0; failure: any other; denied: refused by authentication, zone or policy. */
  readonly outcome?: 'success' | 'failure' | 'denied';
  readonly breakGlass?: boolean;
  readonly outOfHours?: boolean;
  /** Newest first; `before` is the seq to continue below (the previous page's `next`). */
  readonly before?: number;
  readonly limit: number;
}

/** One answer row: the record as the log holds it, with the flags the index derived from it. */
export interface AuditHit {
  readonly record: AuditRecord;
  readonly denied: boolean;
  readonly breakGlass: boolean;
  readonly outOfHours: boolean;
}

export interface AuditPage {
  readonly hits: readonly AuditHit[];
  /** Pass as `before` for the next page; absent on the last page. */
  readonly next?: number;
}

/** Per subject: how often and when it touched what the query named (the "who accessed, and when" answer). */
export interface SubjectSummary {
  readonly subject: string;
  readonly role: string | null;
  readonly events: number;
  readonly denied: number;
  readonly breakGlass: number;
  readonly first: string;
  readonly last: string;
}

export const QUERY_INDEX_FILE = 'audit-review.sqlite';
/** The actions that read images or their metadata: what "accessed" means to the auditor. */
export const ACCESS_ACTIONS = ['instances.read', 'instances.search', 'dimse.find', 'dimse.get', 'dimse.move'] as const;

// Refusals by identify, zone or decide: the codes whose HTTP face is 401, 403 or 429.
const DENIAL_CODES = new Set(Object.entries(ERRORS).filter(([, s]) => [401, 403, 429].includes(s.http)).map(([c]) => c as ErrorCode));
const CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * A derived, rebuildable index of the audit log, so the auditor's questions are answered in
 * milliseconds at millions of events instead of by scanning the log. The log stays the only truth: the
 * index keeps a cursor (seq, byte offset, hash) into it, rows point at the record's bytes in the log and
 * answers are read back from there, and a log that no longer matches the cursor (replaced, truncated)
 * makes the index rebuild itself. It lives in its own SQLite file, not in the archive index: its writes
 * then never wait on ingest's, and a PostgreSQL archive index needs nothing new.
 * Durability is relaxed (synchronous=NORMAL) because a lost tail is re-read from the log.
 */
export class AuditQueryIndex {
  private readonly db: Database.Database;
  private readonly formatter: Intl.DateTimeFormat;
  private readonly startMinute: number;
  private readonly endMinute: number;
  private pending: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private prepared: Statements | null = null;
  /** The file (inode) and offset this process last left the cursor at. */
  private left: { file: number; offset: number } | null = null;
  private lastMinute: { key: string; local: { day: number; minute: number } } | null = null;

  private constructor(private readonly logPath: string, path: string, private readonly hours: WorkingHours) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.formatter = new Intl.DateTimeFormat('en-GB', { timeZone: hours.timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    this.startMinute = minuteOf(hours.start);
    this.endMinute = minuteOf(hours.end);
  }

  /**
   * Opens (creating or rebuilding as needed) the index of the log in `auditDir` and catches up with it.
   * The index file lives outside the audit folder (`indexPath`, default beside it): the trail may sit on
   * a volume of its own, and derived data must never take the space the trail needs.
   */
  static async open(auditDir: string, hours: WorkingHours, indexPath = join(auditDir, '..', QUERY_INDEX_FILE)): Promise<AuditQueryIndex> {
    const index = new AuditQueryIndex(join(auditDir, 'audit.log'), indexPath, hours);
    index.createSchema();
    await index.catchUp();
    return index;
  }

  /** The last record indexed. */
  get cursor(): { seq: number; offset: number } {
    const c = this.readCursor();
    return { seq: c.seq, offset: c.offset };
  }

  /** Wakes the index after the log grew; it reads what is new shortly after, off the caller's path. */
  notify(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.catchUp().catch(() => undefined);
    }, 100);
    this.timer.unref();
  }

  /** Reads every whole record beyond the cursor into the index; concurrent calls share one pass. */
  catchUp(): Promise<void> {
    if (this.pending) {
      this.again = true;
      return this.pending;
    }
    this.pending = (async () => {
      try {
        do {
          this.again = false;
          await this.readNew();
        } while (this.again && !this.closed);
      } finally {
        this.pending = null;
      }
    })();
    return this.pending;
  }

  /** The events matching a query, newest first, one page. */
  query(q: AuditQuery): AuditPage {
    const { where, params, from } = this.whereOf(q);
    const rows = this.db.prepare(`SELECT e.seq, e.offset, e.length, e.denied, e.break_glass, e.out_of_hours FROM ${from} ${where} ORDER BY e.seq DESC LIMIT ?`)
      .all(...params, q.limit + 1) as Array<{ seq: number; offset: number; length: number; denied: number; break_glass: number; out_of_hours: number }>;
    const page = rows.slice(0, q.limit);
    const fd = openSync(this.logPath, 'r');
    try {
      const hits = page.map((r) => {
        const buf = Buffer.alloc(r.length);
        readSync(fd, buf, 0, r.length, r.offset);
        const record = JSON.parse(buf.toString('utf8')) as AuditRecord;
        // The row must still point at its record; anything else means the log changed under the index.
        if (record.seq !== r.seq) throw new Error(`audit query index out of step with the log at record ${r.seq}; restart to rebuild it`);
        return { record, denied: r.denied === 1, breakGlass: r.break_glass === 1, outOfHours: r.out_of_hours === 1 };
      });
      return { hits, ...(rows.length > q.limit && page.length > 0 ? { next: (page[page.length - 1] as { seq: number }).seq } : {}) };
    } finally {
      closeSync(fd);
    }
  }

  /** Who matched a query, with counts and first and last time, most recent first (at most `limit` subjects). */
  subjects(q: Omit<AuditQuery, 'limit' | 'before'>, limit: number): SubjectSummary[] {
    const { where, params, from } = this.whereOf({ ...q, limit });
    return (this.db.prepare(
      `SELECT e.subject_id AS subject, MAX(e.subject_role) AS role, COUNT(*) AS events, SUM(e.denied) AS denied, SUM(e.break_glass) AS breakGlass,
              MIN(e.time) AS first, MAX(e.time) AS last
         FROM ${from} ${where} GROUP BY e.subject_id ORDER BY MAX(e.seq) DESC LIMIT ?`,
    ).all(...params, limit) as SubjectSummary[]);
  }

  /** How many events match a query. */
  count(q: Omit<AuditQuery, 'limit' | 'before'>): number {
    const { where, params, from } = this.whereOf({ ...q, limit: 0 });
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM ${from} ${where}`).get(...params) as { n: number }).n;
  }

  /** Stops following the log and closes the index. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.pending?.catch(() => undefined);
    this.db.close();
  }

  private whereOf(q: AuditQuery): { where: string; params: unknown[]; from: string } {
    const clauses: string[] = [];
    const params: unknown[] = [];
    // The most selective join drives the plan: a patient or a study has its own table, keyed by it.
    let from = 'events e';
    if (q.patientId !== undefined) {
      from = 'event_patients p JOIN events e ON e.seq = p.seq';
      clauses.push('p.patient_id = ?');
      params.push(q.patientId);
    }
    if (q.studyUid !== undefined) {
      from += ' JOIN event_studies s ON s.seq = e.seq';
      clauses.push('s.study_uid = ?');
      params.push(q.studyUid);
    }
    if (q.subject !== undefined) { clauses.push('e.subject_id = ?'); params.push(q.subject); }
    if (q.subjectKind !== undefined) { clauses.push('e.subject_kind = ?'); params.push(q.subjectKind); }
    if (q.from) { clauses.push('e.ms >= ?'); params.push(q.from.getTime()); }
    if (q.to) { clauses.push('e.ms <= ?'); params.push(q.to.getTime()); }
    if (q.actions && q.actions.length > 0) { clauses.push(`e.action IN (${q.actions.map(() => '?').join(',')})`); params.push(...q.actions); }
    if (q.eventType !== undefined) { clauses.push('e.event_type = ?'); params.push(q.eventType); }
    if (q.outcome === 'success') clauses.push('e.outcome = 0');
    if (q.outcome === 'failure') clauses.push('e.outcome <> 0');
    if (q.outcome === 'denied') clauses.push('e.denied = 1');
    if (q.breakGlass !== undefined) clauses.push(`e.break_glass = ${q.breakGlass ? 1 : 0}`);
    if (q.outOfHours !== undefined) clauses.push(`e.out_of_hours = ${q.outOfHours ? 1 : 0}`);
    if (q.before !== undefined) { clauses.push('e.seq < ?'); params.push(q.before); }
    return { where: clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '', params, from };
  }

  private createSchema(): void {
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY, offset INTEGER NOT NULL, length INTEGER NOT NULL, time TEXT NOT NULL, ms INTEGER NOT NULL,
        event_type TEXT NOT NULL, action TEXT NOT NULL, outcome INTEGER NOT NULL, code TEXT,
        subject_kind TEXT NOT NULL, subject_id TEXT NOT NULL, subject_role TEXT,
        source_address TEXT NOT NULL, source_zone TEXT, protocol TEXT NOT NULL,
        denied INTEGER NOT NULL, break_glass INTEGER NOT NULL, out_of_hours INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS events_subject ON events (subject_id, seq);
      CREATE INDEX IF NOT EXISTS events_ms ON events (ms);
      CREATE INDEX IF NOT EXISTS events_action ON events (action, seq);
      CREATE INDEX IF NOT EXISTS events_denied ON events (seq) WHERE denied = 1;
      CREATE INDEX IF NOT EXISTS events_break_glass ON events (seq) WHERE break_glass = 1;
      CREATE INDEX IF NOT EXISTS events_out_of_hours ON events (seq) WHERE out_of_hours = 1;
      CREATE TABLE IF NOT EXISTS event_patients (patient_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (patient_id, seq)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS event_studies (study_uid TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (study_uid, seq)) WITHOUT ROWID;
    `);
    // Out-of-hours is decided when a record is indexed; other working hours mean indexing again.
    const hours = JSON.stringify(this.hours);
    const known = this.db.prepare(`SELECT value FROM meta WHERE key = 'hours'`).get() as { value: string } | undefined;
    if (known?.value !== hours) {
      this.reset();
      this.db.prepare(`INSERT OR REPLACE INTO meta (key, value) VALUES ('hours', ?)`).run(hours);
    }
  }

  private reset(): void {
    this.left = null;
    this.db.exec(`DELETE FROM events; DELETE FROM event_patients; DELETE FROM event_studies; DELETE FROM meta WHERE key = 'cursor';`);
  }

  /** The statements every catch-up runs, prepared on first use (after the schema exists). */
  private statements(): Statements {
    return (this.prepared ??= prepareStatements(this.db));
  }

  private readCursor(): { seq: number; offset: number; hash: string } {
    const row = this.statements().readCursor.get() as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as { seq: number; offset: number; hash: string }) : { seq: 0, offset: 0, hash: '' };
  }

  private async readNew(): Promise<void> {
    let size: number;
    let file: number;
    try {
      ({ size, ino: file } = statSync(this.logPath));
    } catch {
      return; // no log yet
    }
    let cursor = this.readCursor();
    // Where this process left the cursor in this same file, the record there need not be read again.
    const ours = this.left !== null && this.left.file === file && this.left.offset === cursor.offset;
    if (size < cursor.offset || (!ours && !this.continuesAt(cursor))) {
      // The log is shorter than what was indexed, or another log took its place: start again from it.
      this.reset();
      cursor = { seq: 0, offset: 0, hash: '' };
    }
    const { insertEvent, insertPatient, insertStudy, saveCursor } = this.statements();
    const fd = openSync(this.logPath, 'r');
    try {
      while (cursor.offset < size && !this.closed) {
        const buf = Buffer.alloc(Math.min(size - cursor.offset, CHUNK_BYTES));
        const got = readSync(fd, buf, 0, buf.length, cursor.offset);
        let at = 0;
        const batch: Array<{ record: AuditRecord; offset: number; length: number }> = [];
        for (;;) {
          const nl = buf.indexOf(0x0a, at);
          if (nl < 0 || nl >= got) break;
          if (nl > at) batch.push({ record: JSON.parse(buf.subarray(at, nl).toString('utf8')) as AuditRecord, offset: cursor.offset + at, length: nl - at });
          at = nl + 1;
        }
        if (at === 0) break; // only part of a record so far: the writer is mid-append
        const next = { seq: cursor.seq, offset: cursor.offset + at, hash: cursor.hash };
        this.db.transaction(() => {
          for (const { record, offset, length } of batch) {
            const e = record.event;
            const local = this.localTime(record.time);
            insertEvent.run({
              seq: record.seq, offset, length, time: record.time, ms: Date.parse(record.time), eventType: e.eventType, action: e.action,
              outcome: e.outcome, code: e.code ?? null, subjectKind: e.subject.kind, subjectId: e.subject.id, subjectRole: e.subject.role ?? null,
              address: e.source.address, zone: e.source.zone, protocol: e.source.protocol,
              denied: e.outcome !== 0 && e.code !== undefined && DENIAL_CODES.has(e.code as ErrorCode) ? 1 : 0,
              breakGlass: e.detail?.breakGlass === true || e.action.startsWith('breakglass.') ? 1 : 0,
              outOfHours: this.outOfHours(local) ? 1 : 0,
            });
            for (const p of new Set(e.objects?.patientIds ?? [])) insertPatient.run(p, record.seq);
            for (const s of new Set(e.objects?.studyUids ?? [])) insertStudy.run(s, record.seq);
            next.seq = record.seq;
            next.hash = record.hash;
          }
          saveCursor.run(JSON.stringify(next));
        })();
        cursor = next;
        this.left = { file, offset: next.offset };
        // Let requests run between chunks while a large log is indexed at start-up.
        await new Promise<void>((r) => setImmediate(r));
      }
    } finally {
      closeSync(fd);
    }
  }

  /** True when the record the cursor names is still where the cursor says, with the same hash. */
  private continuesAt(cursor: { seq: number; offset: number; hash: string }): boolean {
    if (cursor.seq === 0) return true;
    const row = this.db.prepare('SELECT offset, length FROM events WHERE seq = ?').get(cursor.seq) as { offset: number; length: number } | undefined;
    if (!row) return false;
    const fd = openSync(this.logPath, 'r');
    try {
      const buf = Buffer.alloc(row.length);
      if (readSync(fd, buf, 0, row.length, row.offset) !== row.length) return false;
      const r = JSON.parse(buf.toString('utf8')) as AuditRecord;
      return r.seq === cursor.seq && r.hash === cursor.hash;
    } catch {
      return false;
    } finally {
      closeSync(fd);
    }
  }

  private localTime(iso: string): { day: number; minute: number } {
    // Records come in time order, many in the same minute (offsets are whole minutes): format once per minute.
    const minuteKey = iso.slice(0, 16);
    if (this.lastMinute?.key === minuteKey) return this.lastMinute.local;
    const local = this.formatLocal(iso);
    this.lastMinute = { key: minuteKey, local };
    return local;
  }

  private formatLocal(iso: string): { day: number; minute: number } {
    let day = 1;
    let hour = 0;
    let minute = 0;
    for (const part of this.formatter.formatToParts(new Date(iso))) {
      if (part.type === 'weekday') day = WEEKDAYS.indexOf(part.value) + 1;
      else if (part.type === 'hour') hour = Number(part.value);
      else if (part.type === 'minute') minute = Number(part.value);
    }
    return { day, minute: hour * 60 + minute };
  }

  private outOfHours(local: { day: number; minute: number }): boolean {
    return !this.hours.days.includes(local.day) || local.minute < this.startMinute || local.minute >= this.endMinute;
  }
}

function prepareStatements(db: Database.Database) {
  return {
    readCursor: db.prepare(`SELECT value FROM meta WHERE key = 'cursor'`),
    insertEvent: db.prepare(`INSERT OR REPLACE INTO events VALUES (@seq, @offset, @length, @time, @ms, @eventType, @action, @outcome, @code,
      @subjectKind, @subjectId, @subjectRole, @address, @zone, @protocol, @denied, @breakGlass, @outOfHours)`),
    insertPatient: db.prepare('INSERT OR IGNORE INTO event_patients VALUES (?, ?)'),
    insertStudy: db.prepare('INSERT OR IGNORE INTO event_studies VALUES (?, ?)'),
    saveCursor: db.prepare(`INSERT OR REPLACE INTO meta (key, value) VALUES ('cursor', ?)`),
  };
}
type Statements = ReturnType<typeof prepareStatements>;

const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

function minuteOf(hhmm: string): number {
  const m = /^(\d{2}):(\d{2})$/.exec(hhmm);
  if (!m) throw new Error(`working hours: '${hhmm}' is not HH:MM`);
  return Number(m[1]) * 60 + Number(m[2]);
}
