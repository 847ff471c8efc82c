import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsCall } from '../../../test/support/https.js';
import { startTestServer, type TestServer } from '../../../test/support/server.js';
import { makeInstance } from '../../../test/support/synth.js';

// The requests real DICOMweb clients send, header for header, each with where it was read. Zero
// refusals for resources PacsGuard has; rendered resources are not offered (yet) and say so with 404.
type Resource = 'studies' | 'series' | 'instances' | 'retrieve' | 'metadata' | 'frames' | 'bulkdata' | 'rendered';

interface ClientRow {
  readonly client: string;
  readonly source: string;
  readonly resource: Resource;
  readonly accept: string;
  readonly status: number;
  /** The response's media type (and part type) the client must get. */
  readonly contentType?: RegExp;
}

const JSON_TYPE = /^application\/dicom\+json/;
const DICOM_PARTS = /^multipart\/related; type="application\/dicom"/;
const OCTET_PARTS = /^multipart\/related; type="application\/octet-stream"/;
const DWC_JS = 'dicomweb-client 0.11.3, build/dicomweb-client.es.js: _httpGetApplicationJson, _httpGetMultipartApplicationDicom, _httpGetMultipartApplicationOctetStream';
const CORNERSTONE = 'cornerstone3D packages/dicomImageLoader/src/imageLoader/wadors/loadImage.ts: const mediaType';
const OHIF_CONFIG = 'OHIF Viewers platform/app/public/config (orthanc, dcm4chee): acceptHeader, omitQuotationForMultipartRequest';
// OHIF's data source hands omitQuotationForMultipartRequest to its dicomweb-client, which then drops the quotes around type.
const OHIF_CLIENT = 'OHIF DicomWebDataSource → dicomweb-client with omitQuotationForMultipartRequest';
const ORTHANC = 'Orthanc DICOMweb plugin 1.7, Plugin/DicomWebClient.cpp (HasWadoRsUniversalTransferSyntax, the default, adds transfer-syntax=*)';

const ROWS: readonly ClientRow[] = [
  { client: 'dicomweb-client JS', source: DWC_JS, resource: 'studies', accept: 'application/dicom+json', status: 200, contentType: JSON_TYPE },
  { client: 'dicomweb-client JS', source: DWC_JS, resource: 'series', accept: 'application/dicom+json', status: 200, contentType: JSON_TYPE },
  { client: 'dicomweb-client JS', source: DWC_JS, resource: 'instances', accept: 'application/dicom+json', status: 200, contentType: JSON_TYPE },
  { client: 'dicomweb-client JS', source: DWC_JS, resource: 'metadata', accept: 'application/dicom+json', status: 200, contentType: JSON_TYPE },
  { client: 'dicomweb-client JS', source: DWC_JS, resource: 'retrieve', accept: 'multipart/related; type="application/dicom"', status: 200, contentType: DICOM_PARTS },
  { client: 'dicomweb-client JS', source: DWC_JS, resource: 'frames', accept: 'multipart/related; type="application/octet-stream"', status: 200, contentType: OCTET_PARTS },
  { client: 'dicomweb-client JS', source: DWC_JS, resource: 'bulkdata', accept: 'multipart/related; type="application/octet-stream"', status: 200, contentType: OCTET_PARTS },
  { client: 'OHIF / Cornerstone loader', source: CORNERSTONE, resource: 'frames', accept: 'multipart/related; type=application/octet-stream; transfer-syntax=*', status: 200, contentType: OCTET_PARTS },
  { client: 'OHIF, omitQuotationForMultipartRequest: true', source: OHIF_CONFIG, resource: 'bulkdata', accept: 'multipart/related; type=application/octet-stream; transfer-syntax=*', status: 200, contentType: OCTET_PARTS },
  { client: 'OHIF, omitQuotationForMultipartRequest: false', source: OHIF_CONFIG, resource: 'bulkdata', accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*', status: 200, contentType: OCTET_PARTS },
  { client: 'OHIF, omitQuotationForMultipartRequest: true', source: OHIF_CLIENT, resource: 'retrieve', accept: 'multipart/related; type=application/dicom; transfer-syntax=*', status: 200, contentType: DICOM_PARTS },
  { client: 'OHIF, omitQuotationForMultipartRequest: false', source: OHIF_CLIENT, resource: 'retrieve', accept: 'multipart/related; type="application/dicom"; transfer-syntax=*', status: 200, contentType: DICOM_PARTS },
  { client: 'OHIF (thumbnailRendering: thumbnail)', source: OHIF_CONFIG, resource: 'rendered', accept: 'image/jpeg', status: 404 },
  { client: 'curl, PS3.18 §8.7.3 example', source: 'PS3.18 §8.7.3.5 (multipart/related without type: the resource default)', resource: 'retrieve', accept: 'multipart/related', status: 200, contentType: DICOM_PARTS },
  { client: 'curl, no Accept', source: 'PS3.18 §8.7.3.5 (no Accept: the default media type)', resource: 'frames', accept: '', status: 200, contentType: OCTET_PARTS },
  { client: 'curl -H "Accept: */*"', source: 'curl default Accept', resource: 'metadata', accept: '*/*', status: 200, contentType: JSON_TYPE },
  // Read on the wire from Debian's orthanc-dicomweb 1.7; its STOW-RS boundary (two UUIDs, 73
  // characters) is in multipart.test.ts, the whole exchange in test/interop/orthanc-dicomweb-client.
  { client: 'Orthanc DICOMweb plugin, servers/…/qido', source: ORTHANC, resource: 'studies', accept: '*/*', status: 200, contentType: JSON_TYPE },
  { client: 'Orthanc DICOMweb plugin, servers/…/get', source: ORTHANC, resource: 'series', accept: '*/*', status: 200, contentType: JSON_TYPE },
  { client: 'Orthanc DICOMweb plugin, servers/…/get', source: ORTHANC, resource: 'metadata', accept: '*/*', status: 200, contentType: JSON_TYPE },
  { client: 'Orthanc DICOMweb plugin, servers/…/retrieve', source: ORTHANC, resource: 'retrieve', accept: 'multipart/related; type="application/dicom"; transfer-syntax=*', status: 200, contentType: DICOM_PARTS },
];

describe('requests real DICOMweb clients send', () => {
  let s: TestServer;
  let rad: string;
  const study = '2.25.3301';
  const series = '2.25.3301.1';
  const sop = '2.25.3301.1.1';
  const paths: Record<Resource, string> = {
    studies: '/dicomweb/studies?PatientID=PAT-33',
    series: `/dicomweb/studies/${study}/series`,
    instances: `/dicomweb/studies/${study}/series/${series}/instances`,
    retrieve: `/dicomweb/studies/${study}/series/${series}/instances/${sop}`,
    metadata: `/dicomweb/studies/${study}/series/${series}/metadata`,
    frames: `/dicomweb/studies/${study}/series/${series}/instances/${sop}/frames/1`,
    bulkdata: `/dicomweb/studies/${study}/series/${series}/instances/${sop}/bulkdata/7FE00010`,
    rendered: `/dicomweb/studies/${study}/series/${series}/instances/${sop}/rendered`,
  };

  beforeAll(async () => {
    s = await startTestServer();
    rad = await s.token('radiologist');
    const tech = await s.token('technologist');
    const boundary = 'client-table';
    const dicom = makeInstance({ patientId: 'PAT-33', patientName: 'ROE^ANN', studyUid: study, seriesUid: series, sopUid: sop, modality: 'CT', rows: 16, columns: 16 });
    // dicomweb-client JS's STOW-RS Content-Type (_httpPostMultipartRelatedApplicationDicom), boundary quoted.
    const res = await httpsCall(`${s.url}/dicomweb/studies`, {
      ca: s.ca, method: 'POST', headers: { authorization: `Bearer ${tech}`, 'content-type': `multipart/related; type="application/dicom"; boundary="${boundary}"`, accept: 'application/dicom+json' },
      body: Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), dicom, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    });
    if (res.status !== 200) throw new Error(`STOW as dicomweb-client sends it failed: ${res.status} ${res.body.toString()}`);
  });
  afterAll(async () => s?.stop());

  it.each(ROWS.map((r) => [r.client, r.resource, r.accept, r] as const))('%s → %s with Accept %j', async (_client, resource, accept, row) => {
    const res = await httpsCall(`${s.url}${paths[resource]}`, { ca: s.ca, headers: { authorization: `Bearer ${rad}`, ...(accept ? { accept } : {}) } });
    expect(res.status, `${row.source}: ${res.body.toString().slice(0, 200)}`).toBe(row.status);
    if (row.contentType) expect(String(res.headers['content-type'])).toMatch(row.contentType);
  });
});
