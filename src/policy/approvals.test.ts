import { describe, expect, it } from 'vitest';
import type { Role, Subject } from '../identity/index.js';
import { CHANGE_KINDS, CHANGE_RULES, decideChangeDecision, decideChangeRequest } from './approvals.js';

const user = (username: string, role: Role): Subject => ({ kind: 'user', id: username, username, role });

describe('two-person rules for destructive changes', () => {
  it('lets only the listed roles ask, and never a device', () => {
    for (const kind of CHANGE_KINDS) {
      for (const role of ['administrator', 'technologist', 'radiologist', 'auditor', 'referring-physician', 'researcher', 'vendor-engineer'] as const) {
        expect(decideChangeRequest(user('x', role), kind).allow, `${role} ${kind}`).toBe((CHANGE_RULES[kind].request as readonly Role[]).includes(role));
      }
    }
    const device: Subject = { kind: 'device', id: '1', aeTitle: 'CT01', role: 'modality', services: ['store'], moveDestinations: [] };
    expect(decideChangeRequest(device, 'delete')).toMatchObject({ allow: false, code: 'PG_ERR_POLICY_DENIED' });
  });

  it('never lets the person who asked decide, whatever their role', () => {
    expect(decideChangeDecision(user('ann', 'radiologist'), { kind: 'delete', requestedBy: 'user:ann' })).toMatchObject({ allow: false, code: 'PG_ERR_SECOND_PERSON' });
    expect(decideChangeDecision(user('bob', 'radiologist'), { kind: 'delete', requestedBy: 'user:ann' }).allow).toBe(true);
    expect(decideChangeDecision(user('root', 'administrator'), { kind: 'purge', requestedBy: 'user:root' })).toMatchObject({ allow: false, code: 'PG_ERR_SECOND_PERSON' });
    expect(decideChangeDecision(user('root2', 'administrator'), { kind: 'purge', requestedBy: 'user:root' }).allow).toBe(true);
    // Purges and retention are for administrators: a radiologist cannot approve them, an auditor nothing.
    expect(decideChangeDecision(user('bob', 'radiologist'), { kind: 'retention', requestedBy: 'user:root' }).allow).toBe(false);
    for (const kind of CHANGE_KINDS) expect(decideChangeDecision(user('eve', 'auditor'), { kind, requestedBy: 'user:ann' }).allow).toBe(false);
  });
});
