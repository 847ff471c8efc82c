import dimse from 'dcmjs-dimse';
import { PacsGuardError } from '../../errors.js';
import type { Operated } from '../path.js';
import type { Services } from '../services.js';

/** C-FIND: the pending responses (one per match) and whether the caller cancelled. */
export async function findResponses(
  _services: Services,
  _request: dimse.requests.CFindRequest,
  _cancelled: () => boolean,
): Promise<Operated<{ pending: dimse.responses.CFindResponse[]; cancelled: boolean }>> {
  throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', 'C-FIND is not served yet');
}
