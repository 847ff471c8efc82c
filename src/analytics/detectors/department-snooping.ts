import type { AuditRecord } from '../../audit/index.js';
import { timeOf, type Detector, type Finding } from './detector.js';

const READS = new Set(['instances.read', 'dimse.get', 'dimse.move']);
const DAY_MS = 86_400_000;
/** This many different patients opened outside one's departments in a day is a pattern, not a consult. */
const PATTERN_PATIENTS = 3;

/** What the detector looks up: a person's departments, where studies were performed, and care relationships. */
export interface SnoopingLookups {
  departmentsOf(username: string): Promise<readonly string[]>;
  studyDepartments(studyUids: readonly string[]): Promise<ReadonlyMap<string, string>>;
  inCare(username: string, patientId: string): Promise<boolean>;
}

/**
 * Snooping: a person whose reach is not narrowed by scope (radiologists, technologists) opening studies
 * performed in a department they do not work in, of patients they have no care relationship with. The
 * first such study of a patient in a day is a medium alert (a consult may explain it); the third
 * patient in a day is a high one. People and studies without a recorded department are not judged,
 * and break-glass access has its own detector.
 */
export class DepartmentSnoopingDetector implements Detector {
  readonly name = 'department-snooping';
  readonly describe = "access to patients of another department without a care relationship";
  /** Per person and day: the patients already alerted on. */
  private readonly seen = new Map<string, { day: number; patients: Set<string>; events: number[] }>();

  constructor(private readonly lookups: SnoopingLookups, private readonly scopedRoles: readonly string[]) {}

  async observe(r: AuditRecord): Promise<Finding[]> {
    const e = r.event;
    if (e.subject.kind !== 'user' || !READS.has(e.action) || e.outcome !== 0 || e.detail?.breakGlass === true) return [];
    if (this.scopedRoles.includes(e.subject.role ?? '')) return [];
    const studies = e.objects?.studyUids ?? [];
    if (studies.length === 0) return [];
    const username = e.subject.id.replace(/^user:/, '');
    // Read each time (one indexed row, off the request path): a changed department counts at once.
    const own = await this.lookups.departmentsOf(username);
    if (own.length === 0) return [];
    const ownFolded = new Set(own.map(fold));
    const performed = await this.lookups.studyDepartments(studies);
    const elsewhere = [...performed.values()].filter((d) => !ownFolded.has(fold(d)));
    if (elsewhere.length === 0) return [];
    const patients: string[] = [];
    for (const p of e.objects?.patientIds ?? []) if (!(await this.lookups.inCare(username, p))) patients.push(p);
    if (patients.length === 0) return [];

    const day = Math.floor(timeOf(r) / DAY_MS);
    const today = this.seen.get(e.subject.id);
    const mine = today && today.day === day ? today : { day, patients: new Set<string>(), events: [] };
    this.seen.set(e.subject.id, mine);
    const fresh = patients.filter((p) => !mine.patients.has(p));
    if (fresh.length === 0) return [];
    for (const p of fresh) mine.patients.add(p);
    mine.events.push(r.seq);
    const pattern = mine.patients.size >= PATTERN_PATIENTS;
    return [{
      detector: this.name, severity: pattern ? 'high' : 'medium', subject: e.subject.id,
      summary: `${e.subject.id} (${own.join(', ')}) opened ${[...new Set(elsewhere)].join(', ')} studies of patient(s) ${fresh.join(', ')} without a care relationship`
        + (pattern ? `; ${mine.patients.size} such patients today` : ''),
      explanation: {
        events: pattern ? [...mine.events] : [r.seq],
        baseline: `people open the studies of their own departments (${own.join(', ')}) or of patients they care for`,
        observed: `${e.action} of ${studies.length} stud${studies.length === 1 ? 'y' : 'ies'} performed in ${[...new Set(elsewhere)].join(', ')}`,
        patientsToday: mine.patients.size,
      },
    }];
  }
}

/** Department names compare without regard to case or surrounding spaces (modalities are set up by hand). */
const fold = (d: string) => d.trim().toUpperCase();
