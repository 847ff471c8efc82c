import type { Role } from '../identity/index.js';

/** Everything a subject can ask PacsGuard to do. Each action belongs to one network flow. */
export const ACTIONS = {
  'instances.store': { flow: 'dicomweb-write', describe: 'store instances (STOW-RS, C-STORE, import)' },
  'instances.search': { flow: 'dicomweb-read', describe: 'search studies, series, instances (QIDO-RS, C-FIND)' },
  'instances.read': { flow: 'dicomweb-read', describe: 'retrieve instances, metadata, frames (WADO-RS, C-GET, C-MOVE)' },
  'users.manage': { flow: 'admin-api', describe: 'create and change user accounts' },
  'session.login': { flow: 'auth', describe: 'log in' },
  'server.status': { flow: 'admin-api', describe: 'read server status' },
} as const;

export type Action = keyof typeof ACTIONS;
export type Flow = (typeof ACTIONS)[Action]['flow'] | 'console';

/**
 * The permission matrix: which role may do which action. This table is what the code enforces;
 * separation of duties starts here: the administrator manages accounts but never touches images.
 */
export const PERMISSIONS: Readonly<Record<Role, readonly Action[]>> = {
  administrator: ['users.manage', 'server.status', 'session.login'],
  technologist: ['instances.store', 'instances.search', 'instances.read', 'session.login'],
  radiologist: ['instances.search', 'instances.read', 'session.login'],
  modality: ['instances.store'],
  'clinical-system': ['instances.search', 'instances.read'],
};

/** True when the role's row in the matrix names the action. */
export function roleAllows(role: Role, action: Action): boolean {
  return PERMISSIONS[role].includes(action);
}
