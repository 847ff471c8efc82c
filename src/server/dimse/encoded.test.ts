import dimse from 'dcmjs-dimse';
import { describe, expect, it } from 'vitest';
import { EncodedCommandDataset, encodeCommandSet } from './encoded.js';
import { AssociationScp, librarySendDimse } from './scp.js';

const { CStoreRequest, CFindRequest, CMoveRequest, CGetRequest, CEchoRequest } = dimse.requests;
const { CStoreResponse, CFindResponse, CMoveResponse, CGetResponse, CEchoResponse } = dimse.responses;

const CT = '1.2.840.10008.5.1.4.1.1.2';

function storeRequest(sopUid: string, messageId: number): dimse.requests.CStoreRequest {
  const r = new CStoreRequest(new dimse.Dataset({ SOPClassUID: CT, SOPInstanceUID: sopUid }, '1.2.840.10008.1.2.1'));
  r.setMessageId(messageId);
  return r;
}

/** The command sets PacsGuard sends, as the library builds them. */
function commands(): Array<[string, Record<string, unknown>]> {
  const stored = CStoreResponse.fromRequest(storeRequest('1.2.3.4', 7));
  stored.setStatus(0x0000);
  const refused = CStoreResponse.fromRequest(storeRequest('1.2.3.45', 65535));
  refused.setStatus(0xa900);
  refused.setErrorComment('instance 1.2.3.45 belongs to another study');
  const oddComment = CStoreResponse.fromRequest(storeRequest('1.2.3.456', 1));
  oddComment.setStatus(0xc000);
  oddComment.setErrorComment('odd');
  const find = new CFindRequest();
  find.setMessageId(3);
  const pending = CFindResponse.fromRequest(find);
  pending.setStatus(0xff00);
  const move = new CMoveRequest();
  move.setMessageId(9);
  move.getCommandDataset().setElement('MoveDestination', 'STORESCP');
  const moving = CMoveResponse.fromRequest(move);
  moving.setStatus(0xff00);
  moving.setRemaining(3);
  moving.setCompleted(2);
  moving.setFailures(0);
  moving.setWarnings(1);
  const get = new CGetRequest();
  get.setMessageId(11);
  const got = CGetResponse.fromRequest(get);
  got.setStatus(0xb000);
  got.setRemaining(0);
  got.setCompleted(10);
  got.setFailures(2);
  got.setWarnings(0);
  const echo = new CEchoRequest();
  echo.setMessageId(2);
  const subStore = storeRequest('1.2.3.4.5', 12);
  subStore.getCommandDataset().setElement('MoveOriginatorApplicationEntityTitle', 'VIEWER');
  (subStore.getCommandDataset() as unknown as { setElement(k: string, v: unknown): void }).setElement('MoveOriginatorMessageID', 9);
  return [
    ['C-STORE-RSP success', stored.getCommandDataset().getElements()],
    ['C-STORE-RSP refused, comment', refused.getCommandDataset().getElements()],
    ['C-STORE-RSP odd-length comment', oddComment.getCommandDataset().getElements()],
    ['C-FIND-RSP pending', pending.getCommandDataset().getElements()],
    ['C-MOVE-RQ', move.getCommandDataset().getElements()],
    ['C-MOVE-RSP counts', moving.getCommandDataset().getElements()],
    ['C-GET-RSP warning', got.getCommandDataset().getElements()],
    ['C-ECHO-RSP', CEchoResponse.fromRequest(echo).getCommandDataset().getElements()],
    ['C-STORE-RQ of a C-MOVE', subStore.getCommandDataset().getElements()],
    ['empty comment', { ...stored.getCommandDataset().getElements(), ErrorComment: '' }],
  ];
}

describe('command set encoding', () => {
  it.each(commands())('%s: the same bytes as dcmjs-dimse writes', (_name, elements) => {
    const ours = encodeCommandSet(elements);
    expect(ours).not.toBeNull();
    expect(ours!.toString('hex')).toBe(new dimse.Dataset(elements).getDenaturalizedCommandDataset().toString('hex'));
  });

  it('leaves to the library what it would not encode the same way, and the dataset falls back to it', () => {
    const base = commands()[1]![1];
    const cases = [
      { ...base, ErrorComment: 'Müller not stored' },
      { ...base, AttributeIdentifierList: [0x00100010] },
      { ...base, Status: -1 },
      { ...base, AffectedSOPInstanceUID: ['1.2', '1.3'] },
    ];
    for (const elements of cases) {
      expect(encodeCommandSet(elements)).toBeNull();
      const library = new dimse.Dataset(elements).getDenaturalizedCommandDataset();
      expect(new EncodedCommandDataset(elements).getDenaturalizedCommandDataset().equals(library)).toBe(true);
    }
  });

  it('is what the listener sends through: dcmjs-dimse still sends every DIMSE message by _sendDimse', () => {
    expect(typeof librarySendDimse).toBe('function');
    const ours = (AssociationScp.prototype as unknown as { _sendDimse: unknown })._sendDimse;
    expect(ours).not.toBe(librarySendDimse);
    const source = String(librarySendDimse);
    // The library's sender encodes the command set through the dataset we replace.
    expect(source).toMatch(/_sendPDataTF/);
  });
});
