import { describe, expect, it } from 'vitest';
import type { AccountOrigin, Role, Subject } from '../identity/index.js';
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

describe('an approver must be independent of the requester', () => {
  const now = new Date('2026-06-01T00:00:00Z');
  const origin = (o: Partial<AccountOrigin>): AccountOrigin => ({ createdBy: '', createdApprovedBy: '', createdAt: '2020-01-01T00:00:00Z', roleChangedBy: '', roleApprovedBy: '', roleChangedAt: null, ...o });
  const purge = { kind: 'purge' as const, requestedBy: 'user:administ1' };
  const recent = '2026-05-20T00:00:00Z';

  it('refuses the sock puppet: an account the requester asked for or approved, either way round', () => {
    const puppet = origin({ createdBy: 'user:administ1', createdApprovedBy: 'user:admin2', createdAt: recent });
    expect(decideChangeDecision(user('sockpuppet', 'administrator'), purge, { approver: puppet, days: 90, now })).toMatchObject({ allow: false, code: 'PG_ERR_TIED_APPROVER' });
    // The approver of the account held its enrolment code: tied too.
    expect(decideChangeDecision(user('sockpuppet', 'administrator'), { kind: 'purge', requestedBy: 'user:admin2' }, { approver: puppet, days: 90, now })).toMatchObject({ allow: false, code: 'PG_ERR_TIED_APPROVER' });
    // Vice versa: the puppet asks, its creator approves.
    expect(decideChangeDecision(user('administ1', 'administrator'), { kind: 'purge', requestedBy: 'user:sockpuppet' }, { requester: puppet, days: 90, now })).toMatchObject({ allow: false, code: 'PG_ERR_TIED_APPROVER' });
    const raised = origin({ roleChangedBy: 'user:administ1', roleApprovedBy: 'user:admin3', roleChangedAt: recent });
    expect(decideChangeDecision(user('raised', 'administrator'), purge, { approver: raised, days: 90, now })).toMatchObject({ allow: false, code: 'PG_ERR_TIED_APPROVER' });
  });

  it('allows an unrelated approver, and a tie older than the period', () => {
    expect(decideChangeDecision(user('admin3', 'administrator'), purge, { approver: origin({ createdBy: 'os:root' }), days: 90, now }).allow).toBe(true);
    const old = origin({ createdBy: 'user:administ1', createdAt: '2026-01-01T00:00:00Z' });
    expect(decideChangeDecision(user('sockpuppet', 'administrator'), purge, { approver: old, days: 90, now }).allow).toBe(true);
  });
});
