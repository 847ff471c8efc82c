import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { dicomwebBase } from './context.js';

// A request as dicomwebBase reads it: its headers and the two ends of its connection.
const request = (headers: Record<string, string>, remoteAddress = '10.0.0.5') =>
  ({ headers, socket: { localAddress: '10.0.0.1', localPort: 8443, remoteAddress } }) as unknown as FastifyRequest;
const foreign = { host: 'evil.example', forwarded: 'host=evil.example;proto=http' };

describe('dicomwebBase', () => {
  it('uses the configured public base URL whatever the headers say', () => {
    expect(dicomwebBase(request(foreign), 'https://pacs.hospital.example/')).toBe('https://pacs.hospital.example/dicomweb');
  });
  it('uses the address the connection arrived on when the caller is no trusted proxy', () => {
    expect(dicomwebBase(request(foreign), undefined, ['10.0.0.9'])).toBe('https://10.0.0.1:8443/dicomweb');
  });
  it('believes Forwarded, then X-Forwarded-*, from a trusted proxy only', () => {
    expect(dicomwebBase(request({ forwarded: 'for=1.2.3.4;host=pacs.example;proto=https' }, '10.0.0.9'), undefined, ['10.0.0.9'])).toBe('https://pacs.example/dicomweb');
    expect(dicomwebBase(request({ 'x-forwarded-host': 'pacs.example, inner', 'x-forwarded-proto': 'http' }, '10.0.0.9'), undefined, ['10.0.0.9'])).toBe('http://pacs.example/dicomweb');
    expect(dicomwebBase(request({ forwarded: 'host="bad host/";proto=gopher' }, '10.0.0.9'), undefined, ['10.0.0.9'])).toBe('https://10.0.0.1:8443/dicomweb');
  });
});
