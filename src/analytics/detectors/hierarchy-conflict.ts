import type { AuditRecord } from '../../audit/index.js';
import type { Detector, Finding } from './detector.js';

/**
 * Data quality: an instance reusing a UID the archive holds under another parent (a series under another
 * study after a bad re-send, a study under another patient after a worklist mix-up) is stored where its
 * header says, or refused; either way someone must reconcile the records, so each ingest that met one
 * raises an alert naming the UIDs and both parents.
 */
export class HierarchyConflictDetector implements Detector {
  readonly name = 'hierarchy-conflict';
  readonly describe = 'an instance reused a series, study or instance UID the archive holds under another study, patient or series';

  observe(r: AuditRecord): Finding[] {
    if (r.event.action !== 'instances.store' && r.event.action !== 'dimse.store') return [];
    const stored = r.event.detail?.hierarchyConflictsStored;
    const refused = r.event.detail?.hierarchyConflictsRefused;
    if (stored === undefined && refused === undefined) return [];
    const said = [stored !== undefined ? `stored as the header says: ${String(stored)}` : '', refused !== undefined ? `refused: ${String(refused)}` : ''].filter(Boolean).join('; ');
    return [{
      detector: this.name, severity: 'medium', subject: r.event.subject.id,
      summary: `instances from ${r.event.subject.id} reuse UIDs of another patient, study or series (${said})`,
      explanation: { events: [r.seq], observed: said, studyUids: r.event.objects?.studyUids ?? [] },
    }];
  }
}
