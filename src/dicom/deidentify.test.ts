import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { makeInstance, SYNTH_TRANSFER_SYNTAX_UID } from '../../test/support/synth.js';
import { deidentifyDataset, deidentifyPart10, hasBurnedInAnnotation, pseudonymsWith } from './deidentify.js';
import { parsePart10 } from './parse.js';

const p = pseudonymsWith(randomBytes(32));
const IDENTIFYING = ['DOE^JANE', 'PAT-DEID-1', '19700102', 'ACC-DEID', 'HOUSE^GREGORY', '2.25.4242', '2.25.4242.1', '2.25.4242.1.1'];

describe('de-identification (PS3.15 Basic Application Level Confidentiality Profile)', () => {
  for (const syntax of ['explicit', 'implicit', 'bigEndian'] as const) {
    it(`leaves no identifier in any byte of a ${syntax} instance, and yields valid DICOM with pseudonyms`, () => {
      const original = makeInstance({ patientName: 'DOE^JANE', patientId: 'PAT-DEID-1', birthDate: '19700102', accessionNumber: 'ACC-DEID', referringPhysicianName: 'HOUSE^GREGORY', studyUid: '2.25.4242', seriesUid: '2.25.4242.1', sopUid: '2.25.4242.1.1', rows: 16, columns: 16, transferSyntax: syntax } as Parameters<typeof makeInstance>[0]);
      const out = deidentifyPart10(original, SYNTH_TRANSFER_SYNTAX_UID[syntax], p);
      const text = out.toString('latin1');
      for (const id of IDENTIFYING) expect(text, id).not.toContain(id);
      const parsed = parsePart10(out);
      expect(parsed.studyInstanceUid).toBe(p.uid('2.25.4242'));
      expect(parsed.sopInstanceUid).toBe(p.uid('2.25.4242.1.1'));
      expect(parsed.attributes.patientId).toBe(p.patientId('PAT-DEID-1'));
      // Same original, same pseudonym under one key (a patient can be followed across studies); another key, another pseudonym.
      expect(deidentifyPart10(original, SYNTH_TRANSFER_SYNTAX_UID[syntax], p).equals(out)).toBe(true);
      expect(pseudonymsWith(randomBytes(32)).uid('2.25.4242')).not.toBe(p.uid('2.25.4242'));
      expect(p.uid('2.25.4242')).toMatch(/^2\.25\.\d{1,39}$/);
    });
  }

  it('keeps the image attributes, empties the type 2 ones, and records what was done', () => {
    const ds = deidentifyDataset({
      '00080060': { vr: 'CS', Value: ['CT'] }, '00280010': { vr: 'US', Value: [512] }, '00100010': { vr: 'PN', Value: [{ Alphabetic: 'DOE^JANE' }] },
      '00080020': { vr: 'DA', Value: ['20240101'] }, '00081030': { vr: 'LO', Value: ['CT HEAD for Jane Doe'] }, '00091010': { vr: 'LO', Value: ['private'] },
      '0020000D': { vr: 'UI', Value: ['2.25.1'] },
    }, p);
    expect(ds['00080060']?.Value).toEqual(['CT']);
    expect(ds['00280010']?.Value).toEqual([512]);
    expect(ds['00080020']).toEqual({ vr: 'DA' });
    expect(ds['00081030']).toBeUndefined();
    expect(ds['00091010']).toBeUndefined();
    expect(ds['0020000D']?.Value).toEqual([p.uid('2.25.1')]);
    expect(ds['00120062']?.Value).toEqual(['YES']);
    expect(JSON.stringify(ds)).not.toContain('DOE');
  });

  it('refuses an instance with burned-in annotation', () => {
    const original = makeInstance({ rows: 8, columns: 8 });
    // The synthetic writer has no burned-in flag; set it in the dataset dcmjs reads by patching the bytes' dict.
    expect(hasBurnedInAnnotation({ '00280301': { vr: 'CS', Value: ['YES'] } })).toBe(true);
    expect(hasBurnedInAnnotation({ '00280301': { vr: 'CS', Value: ['NO'] } })).toBe(false);
    expect(() => deidentifyPart10(original, SYNTH_TRANSFER_SYNTAX_UID.explicit, p)).not.toThrow();
  });
});
