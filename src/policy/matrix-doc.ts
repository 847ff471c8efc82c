import { PERSON_ROLES, ROLES } from '../identity/index.js';
import { CHANGE_RULES } from './approvals.js';
import { ACTIONS, DEVICE_SERVICE_OF, PERMISSIONS, type Action } from './permissions.js';
import { FLOWS } from './zones.js';

/**
 * docs/permissions.md, written from the same tables decide() enforces (PERMISSIONS, ACTIONS, the
 * two-person rules), so the document cannot drift from the code: a test fails when they differ.
 */
export function renderPermissionMatrix(): string {
  const actions = Object.keys(ACTIONS) as Action[];
  const devices = ROLES.filter((r) => !(PERSON_ROLES as readonly string[]).includes(r));
  const out = [
    '# PacsGuard permission matrix',
    '',
    'Generated from `src/policy/permissions.ts` and `src/policy/approvals.ts` by `npm run docs:permissions`;',
    'do not edit by hand. A request is allowed only when its role permits the action here, the zone it',
    'comes from permits the action\'s flow (config `zones`), and the role\'s scope covers the resource.',
    '',
    '## People',
    '',
    `| action | flow | ${PERSON_ROLES.join(' | ')} |`,
    `| --- | --- | ${PERSON_ROLES.map(() => ':---:').join(' | ')} |`,
    ...actions.map((a) => `| \`${a}\` ${ACTIONS[a].describe} | ${ACTIONS[a].flow} | ${PERSON_ROLES.map((r) => (PERMISSIONS[r].includes(a) ? '✔' : '')).join(' | ')} |`),
    '',
    '## Devices',
    '',
    'A device calls over DICOM TLS, or over DICOMweb (HTTPS) presenting the client certificate enrolment',
    'issued it. A device role bounds what any device of its kind may be allowed; each device\'s own allowed',
    'services (the column "service") and C-MOVE destinations (`pacsguard device allow`) narrow it further.',
    '',
    `| action | flow | service | ${devices.join(' | ')} |`,
    `| --- | --- | --- | ${devices.map(() => ':---:').join(' | ')} |`,
    ...actions.filter((a) => devices.some((r) => PERMISSIONS[r].includes(a))).map((a) => `| \`${a}\` | ${ACTIONS[a].flow} | ${DEVICE_SERVICE_OF[a] ?? ''} | ${devices.map((r) => (PERMISSIONS[r].includes(a) ? '✔' : '')).join(' | ')} |`),
    '',
    '## Destructive changes: two people',
    '',
    'Asked for by one person (`changes.request`), carried out only when a different person approves',
    '(`changes.decide`); nobody approves their own request.',
    '',
    '| change | who may ask | who may approve |',
    '| --- | --- | --- |',
    ...Object.entries(CHANGE_RULES).map(([k, r]) => `| \`${k}\`: ${r.describe} | ${r.request.join(', ')} | ${r.decide.join(', ')} |`),
    '',
    '## Flows',
    '',
    `Zones name the flows they may use: ${FLOWS.map((f) => `\`${f}\``).join(', ')}. An address in no zone may use none.`,
    '',
  ];
  return out.join('\n');
}
