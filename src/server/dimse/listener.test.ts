import dimse from 'dcmjs-dimse';
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { CertificateAuthority } from '../../identity/index.js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestServer, type TestServer } from '../../../test/support/server.js';
import { DatasetCollector, EncodedDataset, encodeCommandSet } from './encoded.js';
import { ByteBudget, PduGuard } from './limits.js';

/** PS3.8 §9.3.2: an A-ASSOCIATE-RQ proposing the given abstract syntaxes with implicit VR little endian. */
function associateRq(calling: string, called: string, abstractSyntaxes: string[] = ['1.2.840.10008.1.1']): Buffer {
  const item = (type: number, body: Buffer) => {
    const h = Buffer.alloc(4);
    h[0] = type;
    h.writeUInt16BE(body.length, 2);
    return Buffer.concat([h, body]);
  };
  const ae = (s: string) => Buffer.from(s.padEnd(16, ' '), 'latin1');
  const contexts = abstractSyntaxes.map((uid, i) => item(0x20, Buffer.concat([
    Buffer.from([1 + 2 * i, 0, 0, 0]), item(0x30, Buffer.from(uid)), item(0x40, Buffer.from('1.2.840.10008.1.2')),
  ])));
  const maxLength = Buffer.alloc(4);
  maxLength.writeUInt32BE(16384);
  const userInfo = item(0x50, Buffer.concat([item(0x51, maxLength), item(0x52, Buffer.from('1.2.3.4'))]));
  const body = Buffer.concat([Buffer.from([0, 1, 0, 0]), ae(called), ae(calling), Buffer.alloc(32), item(0x10, Buffer.from('1.2.840.10008.3.1.1.1')), ...contexts, userInfo]);
  const head = Buffer.alloc(6);
  head[0] = 0x01;
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}

/** Sends bytes on a fresh connection and collects what comes back until the peer closes or `waitMs` pass. */
function exchange(port: number, bytes: Buffer, waitMs = 1500): Promise<{ reply: Buffer; closedByPeer: boolean; socket: Socket }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closedByPeer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ reply: Buffer.concat(chunks), closedByPeer, socket });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', () => socket.write(bytes));
  });
}

/** C-ECHO from a registered legacy device through dcmjs-dimse's client: status, or an error. */
function echo(port: number, calling = 'LEGACY'): Promise<number> {
  return new Promise((resolve, reject) => {
    const client = new dimse.Client();
    const request = new dimse.requests.CEchoRequest();
    let status = -1;
    request.on('response', (r: dimse.responses.CEchoResponse) => {
      status = r.getStatus();
    });
    client.addRequest(request);
    client.on('closed', () => resolve(status));
    client.on('associationRejected', () => resolve(-2));
    client.on('networkError', (e: Error) => reject(e));
    client.send('127.0.0.1', port, calling, 'PACSGUARD');
  });
}

describe('PDU guard', () => {
  const header = (type: number, length: number) => {
    const b = Buffer.alloc(6);
    b[0] = type;
    b.writeUInt32BE(length, 2);
    return b;
  };
  it('refuses unknown types, oversized lengths and PDUs out of order before their body is read', () => {
    expect(new PduGuard(1024).feed(header(0x09, 4))).toMatchObject({ abortReason: 1 });
    expect(new PduGuard(1024).feed(header(0x04, 10))).toMatchObject({ abortReason: 2 });
    expect(new PduGuard(1024).feed(header(0x01, 0xffffffff))).toMatchObject({ abortReason: 6 });
    const g = new PduGuard(1024);
    expect(g.feed(Buffer.concat([header(0x01, 3), Buffer.from([1, 2, 3])]))).toBeUndefined();
    expect(g.feed(header(0x04, 1025))).toMatchObject({ abortReason: 6 });
    const g2 = new PduGuard(1024);
    g2.feed(Buffer.concat([header(0x01, 0)]));
    expect(g2.feed(header(0x01, 0))).toMatchObject({ reason: expect.stringMatching(/second/) });
  });
  it('follows framing across arbitrary chunking', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 40 }), (cuts) => {
      const stream = Buffer.concat([header(0x01, 5), Buffer.alloc(5), header(0x04, 100), Buffer.alloc(100), header(0x05, 4), Buffer.alloc(4)]);
      const g = new PduGuard(1000);
      let at = 0;
      let i = 0;
      while (at < stream.length) {
        const n = cuts[i++ % cuts.length] as number;
        expect(g.feed(stream.subarray(at, at + n))).toBeUndefined();
        at += n;
      }
    }));
  });
});

describe('dataset collector', () => {
  it('stops keeping bytes past its own limit or the shared budget, and gives the budget back', () => {
    const budget = new ByteBudget(100);
    const a = new DatasetCollector(50, false, budget);
    a.write(Buffer.alloc(40));
    expect(budget.inUse).toBe(40);
    a.write(Buffer.alloc(20));
    expect(a.overflowed).toBe(true);
    expect(a.overflowReason).toMatch(/over the limit of 50 bytes/);
    expect(budget.inUse).toBe(0);
    const b = new DatasetCollector(1000, false, budget);
    const c = new DatasetCollector(1000, false, budget);
    b.write(Buffer.alloc(80));
    c.write(Buffer.alloc(30));
    expect(c.overflowReason).toMatch(/would pass 100 bytes/);
    expect(Buffer.concat(b.take())).toHaveLength(80);
    b.release();
    expect(budget.inUse).toBe(0);
  });
});

describe('DICOM listener under bad input', () => {
  let pg: TestServer;
  let port: number;
  beforeAll(async () => {
    pg = await startTestServer({
      configure: (c) => ({ ...c, dimse: { ...c.dimse, maxAssociations: 6, maxAssociationsPerDevice: 2, associationTimeoutMs: 800, maxPduBytes: 64 * 1024, maxDatasetBytes: 256 * 1024, maxBufferedBytes: 200 * 1024 } }),
    });
    port = Number(pg.server.urls.dicom.slice(pg.server.urls.dicom.lastIndexOf(':') + 1));
    await pg.server.services.devices.addLegacy({ aeTitle: 'LEGACY', address: '127.0.0.1', zone: 'local', role: 'modality', services: ['echo', 'store'] });
    await pg.server.services.devices.addLegacy({ aeTitle: 'HOLDER', address: '127.0.0.1', zone: 'local', role: 'modality', services: ['echo'] });
  });
  afterAll(async () => {
    await pg?.stop();
  });
  // The record is durable before the abort goes out, but the abort may reach us before this test reads the
  // file on a loaded machine's scheduler: wait for the record rather than read once.
  const audit = () => readFileSync(join(pg.dataDir, 'audit', 'audit.log'), 'utf8');
  const expectAudited = (pattern: RegExp | string) =>
    vi.waitFor(() => (typeof pattern === 'string' ? expect(audit()).toContain(pattern) : expect(audit()).toMatch(pattern)), { timeout: 5000, interval: 50 });

  it('answers an oversized length field with A-ABORT before buffering it, audited', async () => {
    const bogus = Buffer.from([0x01, 0, 0xff, 0xff, 0xff, 0xf0, 1, 2, 3]);
    const r = await exchange(port, bogus);
    expect(r.reply[0]).toBe(0x07);
    expect(r.closedByPeer).toBe(true);
    await expectAudited(/announces 4294967280 bytes/);
  });

  it('closes a truncated PDU when the association timer runs out', async () => {
    const rq = associateRq('LEGACY', 'PACSGUARD');
    const r = await exchange(port, rq.subarray(0, 20), 4000);
    expect(r.closedByPeer).toBe(true);
  });

  it('rejects an association that proposes nothing we serve, or answers it with every context refused', async () => {
    const r = await exchange(port, associateRq('LEGACY', 'PACSGUARD', ['1.2.3.4.5.6']));
    // A-ASSOCIATE-AC (every context refused) or A-ASSOCIATE-RJ: never a crash, never silence.
    expect([0x02, 0x03]).toContain(r.reply[0]);
    r.socket.destroy();
  });

  it('survives random bytes, and random bytes after a valid association request', async () => {
    await fc.assert(fc.asyncProperty(
      fc.uint8Array({ minLength: 1, maxLength: 2048 }),
      fc.boolean(),
      async (bytes, afterAssociate) => {
        const payload = afterAssociate ? Buffer.concat([associateRq('LEGACY', 'PACSGUARD'), Buffer.from(bytes)]) : Buffer.from(bytes);
        const r = await exchange(port, payload, 300);
        r.socket.destroy();
      },
    ), { numRuns: 60 });
    // Still serving, and nothing of the garbage made it into the archive.
    expect(await echo(port)).toBe(0);
    expect((await pg.server.services.index.counts()).instances).toBe(0);
  });

  it('survives random bytes over TLS, before and after the handshake, and audits the handshake failures', async () => {
    const tlsPort = Number(pg.server.urls.dicomTls.slice(pg.server.urls.dicomTls.lastIndexOf(':') + 1));
    const ca = await CertificateAuthority.load(join(pg.dataDir, 'pki'));
    const { identity } = await pg.server.services.devices.enroll(ca, { aeTitle: 'FUZZ01', zone: 'local', role: 'modality', services: ['echo'] });
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 1024 }), fc.boolean(), async (bytes, handshake) => {
      if (!handshake) {
        (await exchange(tlsPort, Buffer.from(bytes), 300)).socket.destroy();
        return;
      }
      await new Promise<void>((resolve) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: tlsPort, key: identity.keyPem, cert: identity.certPem, ca: identity.caPem, servername: 'localhost' }, () => {
          socket.write(Buffer.concat([associateRq('FUZZ01', 'PACSGUARD'), Buffer.from(bytes)]));
        });
        const t = setTimeout(() => socket.destroy(), 300);
        socket.on('close', () => {
          clearTimeout(t);
          resolve();
        });
        socket.on('error', () => undefined);
      });
    }), { numRuns: 30 });
    await expectAudited('PG_ERR_DIMSE_TLS');
    expect(await echo(port)).toBe(0);
  });

  it('limits associations per device and in total, and recovers when they close', async () => {
    const held: Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await exchange(port, associateRq('HOLDER', 'PACSGUARD'), 500);
      expect(r.reply[0]).toBe(0x02);
      held.push(r.socket);
    }
    const third = await exchange(port, associateRq('HOLDER', 'PACSGUARD'), 500);
    expect(third.reply[0]).toBe(0x03);
    // A-ASSOCIATE-RJ: result transient (2), source service provider presentation (3), local limit exceeded (2).
    expect([...third.reply.subarray(7, 10)]).toEqual([2, 3, 2]);
    third.socket.destroy();
    // A flood of bare connections: the ones past the limit are refused or dropped, none crash us.
    const flood = await Promise.all(Array.from({ length: 20 }, () => exchange(port, associateRq('LEGACY', 'PACSGUARD'), 800)));
    expect(flood.some((r) => r.reply[0] === 0x03 || (r.reply.length === 0 && r.closedByPeer))).toBe(true);
    for (const r of flood) r.socket.destroy();
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 200));
    expect(await echo(port)).toBe(0);
    await expectAudited(/holds 2 associations already/);
  });

  it('answers a C-STORE whose dataset does not parse with a failure status, audited', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const client = new dimse.Client();
      const request = new dimse.requests.CStoreRequest(new EncodedDataset(Buffer.from('definitely not a dataset, 32 by.'), '1.2.840.10008.1.2'));
      request.setAffectedSopClassUid('1.2.840.10008.5.1.4.1.1.7');
      request.setAffectedSopInstanceUid('2.25.1234');
      let got = -1;
      request.on('response', (r: dimse.responses.CStoreResponse) => {
        got = r.getStatus();
      });
      client.addRequest(request);
      client.on('closed', () => resolve(got));
      client.on('networkError', (e: Error) => reject(e));
      client.send('127.0.0.1', port, 'LEGACY', 'PACSGUARD');
    });
    expect(status).not.toBe(0);
    expect(status).not.toBe(-1);
    await expectAudited(/"action":"dimse.store","outcome":8/);
    // The dataset was staged in the blob store as it arrived; refused, its staged copy is gone.
    await expectNoStagedBlobs();
  });

  /** Waits (briefly: discarding runs after the response) for the blob store's tmp/ folder to be empty. */
  const expectNoStagedBlobs = async () => {
    const tmp = join(pg.dataDir, 'blobs', 'tmp');
    for (let i = 0; i < 40 && readdirSync(tmp).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(tmp)).toEqual([]);
  };

  /** A PDV item (PS3.8 §9.3.5.1) on the first presentation context; control bit 0 command, bit 1 last fragment. */
  const pdv = (control: number, bytes: Buffer) => {
    const head = Buffer.alloc(6);
    head.writeUInt32BE(bytes.length + 2, 0);
    head[4] = 1; // the presentation context associateRq proposes first
    head[5] = control;
    return Buffer.concat([head, bytes]);
  };
  /** A P-DATA-TF PDU carrying one item. */
  const pData = (item: Buffer) => {
    const head = Buffer.alloc(6);
    head[0] = 0x04;
    head.writeUInt32BE(item.length, 2);
    return Buffer.concat([head, item]);
  };

  it('records a C-STORE abandoned mid-dataset by a peer that hangs up: AE, address, instance, bytes', async () => {
    const CT = '1.2.840.10008.5.1.4.1.1.2';
    const socket = connect({ host: '127.0.0.1', port });
    const replies: Buffer[] = [];
    socket.on('data', (c: Buffer) => replies.push(c));
    socket.on('error', () => undefined);
    socket.write(associateRq('LEGACY', 'PACSGUARD', [CT]));
    await vi.waitFor(() => expect(Buffer.concat(replies)[0]).toBe(0x02), { timeout: 3000, interval: 20 });
    // The command and the first 6000 bytes of its dataset (a fragment that is not the last), then gone.
    socket.write(Buffer.concat([
      pData(pdv(0x03, encodeCommandSet({ AffectedSOPClassUID: CT, CommandField: 0x0001, MessageID: 1, Priority: 0, CommandDataSetType: 0x0000, AffectedSOPInstanceUID: '2.25.880011' })!)),
      pData(pdv(0x00, Buffer.alloc(6000, 0x55))),
    ]));
    await new Promise((r) => setTimeout(r, 200));
    socket.destroy();
    await expectAudited('C-STORE of 2.25.880011 abandoned: the connection closed after 6000 bytes of its dataset');
    const record = audit().split('\n').find((l) => l.includes('2.25.880011 abandoned')) as string;
    expect(JSON.parse(record)).toMatchObject({
      event: {
        action: 'dimse.store', eventType: 'DICOM Instances Transferred', code: 'PG_ERR_DIMSE_ABANDONED',
        subject: { kind: 'device', id: 'device:LEGACY' }, source: { address: '127.0.0.1', protocol: 'dimse' },
        objects: { sopUid: '2.25.880011' },
        detail: { callingAe: 'LEGACY', sopClassUid: CT, bytesReceived: 6000, endedBy: 'peer' },
      },
    });
    await expectNoStagedBlobs();
  });

  it('aborts a C-STORE sent before the previous one was answered, and keeps neither dataset', async () => {
    const CT = '1.2.840.10008.5.1.4.1.1.2';
    const store = (messageId: number) => Buffer.concat([
      pData(pdv(0x03, encodeCommandSet({ AffectedSOPClassUID: CT, CommandField: 0x0001, MessageID: messageId, Priority: 0, CommandDataSetType: 0x0000, AffectedSOPInstanceUID: `2.25.7700${messageId}` })!)),
      pData(pdv(0x02, Buffer.alloc(4096, messageId))),
    ]);
    const socket = connect({ host: '127.0.0.1', port });
    const replies: Buffer[] = [];
    socket.on('data', (c: Buffer) => replies.push(c));
    socket.on('error', () => undefined);
    const closed = new Promise((r) => socket.once('close', r));
    socket.write(associateRq('LEGACY', 'PACSGUARD', [CT]));
    await vi.waitFor(() => expect(Buffer.concat(replies)[0]).toBe(0x02), { timeout: 3000, interval: 20 });
    // Two requests in one write: the second arrives while the first is still being stored.
    socket.write(Buffer.concat([store(1), store(2)]));
    await closed;
    await expectAudited(/request 2 sent before the previous one was answered/);
    await expectNoStagedBlobs();
  });

  const storeRaw = (bytes: Buffer, sopUid: string) => new Promise<string>((resolve) => {
    const client = new dimse.Client();
    const request = new dimse.requests.CStoreRequest(new EncodedDataset(bytes, '1.2.840.10008.1.2'));
    request.setAffectedSopClassUid('1.2.840.10008.5.1.4.1.1.7');
    request.setAffectedSopInstanceUid(sopUid);
    request.on('response', () => resolve('response'));
    client.addRequest(request);
    client.on('closed', () => resolve('closed'));
    client.on('networkError', () => resolve('closed'));
    client.send('127.0.0.1', port, 'LEGACY', 'PACSGUARD');
  });

  it('aborts an association that would pass the dataset bytes held over all associations', async () => {
    // Under the per-dataset limit (256 KiB), over the shared budget (200 KiB).
    expect(await storeRaw(Buffer.alloc(220 * 1024, 0x42), '2.25.91011')).toBe('closed');
    await expectAudited(/held over all associations would pass 204800 bytes/);
    // The budget is whole again afterwards: a small dataset is received (and refused by ingest, as garbage).
    expect(await storeRaw(Buffer.alloc(10 * 1024, 0x43), '2.25.91012')).toBe('response');
    await expectNoStagedBlobs();
  });

  it('aborts an association whose dataset exceeds the configured maximum', async () => {
    const big = Buffer.alloc(300 * 1024, 0x41);
    const outcome = await new Promise<string>((resolve) => {
      const client = new dimse.Client();
      const request = new dimse.requests.CStoreRequest(new EncodedDataset(big, '1.2.840.10008.1.2'));
      request.setAffectedSopClassUid('1.2.840.10008.5.1.4.1.1.7');
      request.setAffectedSopInstanceUid('2.25.5678');
      request.on('response', () => resolve('response'));
      client.addRequest(request);
      client.on('closed', () => resolve('closed'));
      client.on('networkError', () => resolve('closed'));
      client.send('127.0.0.1', port, 'LEGACY', 'PACSGUARD');
    });
    expect(outcome).toBe('closed');
    await expectAudited(/over the limit of 262144 bytes|would pass 204800 bytes/);
    expect(await echo(port)).toBe(0);
    await expectNoStagedBlobs();
  });
});
