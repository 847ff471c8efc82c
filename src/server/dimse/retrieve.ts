import dimse from 'dcmjs-dimse';
import { PacsGuardError } from '../../errors.js';
import type { Operated } from '../path.js';
import type { Services } from '../services.js';
import type { ListenerContext } from './scp.js';

/** C-GET: sends the matching instances back over the same association as C-STORE sub-operations. */
export async function retrieveByGet(
  _services: Services,
  _scp: dimse.Scp,
  _request: dimse.requests.CGetRequest,
  _send: (responses: dimse.responses.CGetResponse[]) => void,
  _cancelled: () => boolean,
): Promise<Operated<dimse.responses.CGetResponse>> {
  throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', 'C-GET is not served yet');
}

/** C-MOVE: sends the matching instances to a registered destination over a new association. */
export async function retrieveByMove(
  _ctx: ListenerContext,
  _request: dimse.requests.CMoveRequest,
  _destination: string,
  _send: (responses: dimse.responses.CMoveResponse[]) => void,
  _cancelled: () => boolean,
): Promise<Operated<dimse.responses.CMoveResponse>> {
  throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', 'C-MOVE is not served yet');
}
