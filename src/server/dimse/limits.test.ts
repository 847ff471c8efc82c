import { describe, expect, it } from 'vitest';
import { makePrng } from '../../../test/support/synth.js';
import { PduFramer } from './limits.js';

function pdu(type: number, body: number, fill: number): Buffer {
  const b = Buffer.alloc(6 + body, fill);
  b[0] = type;
  b[1] = 0;
  b.writeUInt32BE(body, 2);
  return b;
}

describe('PduFramer', () => {
  it('hands over exactly the PDUs sent, each whole, however the bytes were split', () => {
    const pdus = [pdu(1, 300, 1), pdu(4, 70_000, 2), pdu(4, 0, 3), pdu(4, 5, 4), pdu(5, 4, 5), pdu(4, 262_144, 6)];
    const stream = Buffer.concat(pdus);
    const prng = makePrng(7);
    for (let trial = 0; trial < 50; trial++) {
      const framer = new PduFramer();
      const out: Buffer[] = [];
      // Chunks from 1 byte (a header split across reads) to 40 000 bytes (several PDUs in one read).
      for (let at = 0; at < stream.length;) {
        const size = trial === 0 ? 1 : 1 + prng.int(trial % 2 === 0 ? 40_000 : 7);
        out.push(...framer.push(stream.subarray(at, at + size)));
        at += size;
        if (trial === 0 && at > 2_000) {
          out.push(...framer.push(stream.subarray(at)));
          break;
        }
      }
      expect(out.map((b) => b.length)).toEqual(pdus.map((b) => b.length));
      out.forEach((b, i) => expect(b.equals(pdus[i] as Buffer)).toBe(true));
    }
  });

  it('holds a partial PDU until the rest arrives', () => {
    const framer = new PduFramer();
    const p = pdu(4, 100, 9);
    expect(framer.push(p.subarray(0, 3))).toEqual([]);
    expect(framer.push(p.subarray(3, 50))).toEqual([]);
    const done = framer.push(p.subarray(50));
    expect(done).toHaveLength(1);
    expect(done[0]?.equals(p)).toBe(true);
  });
});
