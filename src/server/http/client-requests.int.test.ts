import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsCall, type TestResponse } from '../../../test/support/https.js';
import { startTestServer, type TestServer } from '../../../test/support/server.js';
import { makeInstance } from '../../../test/support/synth.js';

// The requests real DICOMweb clients send, header for header, each with where it was read. Zero
// refusals for resources PacsGuard has.
type Resource = 'studies' | 'series' | 'instances' | 'retrieve' | 'seriesRetrieve' | 'metadata' | 'frames' | 'bulkdata' | 'rendered' | 'thumbnail' | 'store';

interface ClientRow {
  readonly client: string;
  readonly source: string;
  readonly resource: Resource;
  readonly accept: string;
  /** A STOW-RS body's Content-Type (resource 'store'), `BOUNDARY` standing for the body's boundary. */
  readonly stowContentType?: string;
  readonly status: number;
  /** The response's media type (and part type) the client must get. */
  readonly contentType?: RegExp;
}

const JSON_TYPE = /^application\/dicom\+json/;
const DICOM_PARTS = /^multipart\/related; type="application\/dicom"/;
const OCTET_PARTS = /^multipart\/related; type="application\/octet-stream"/;
const JPEG = /^image\/jpeg$/;
const DWC_JS = 'dicomweb-client 0.11.3, build/dicomweb-client.es.js: _httpGetApplicationJson, _httpGetMultipartApplicationDicom, _httpGetMultipartApplicationOctetStream';
const CORNERSTONE = 'cornerstone3D packages/dicomImageLoader/src/imageLoader/wadors/loadImage.ts: const mediaType';
const OHIF_CONFIG = 'OHIF Viewers platform/app/public/config (orthanc, dcm4chee): acceptHeader, omitQuotationForMultipartRequest';
// OHIF's data source hands omitQuotationForMultipartRequest to its dicomweb-client, which then drops the quotes around type.
const OHIF_CLIENT = 'OHIF DicomWebDataSource → dicomweb-client with omitQuotationForMultipartRequest';
const ORTHANC = 'Orthanc DICOMweb plugin 1.7, Plugin/DicomWebClient.cpp (HasWadoRsUniversalTransferSyntax, the default, adds transfer-syntax=*)';
const DWC_PY = 'dicomweb-client (Python) src/dicomweb_client/web.py: _http_get_application_json, _build_multipart_accept_header_field_value, _http_get_multipart (default type "*/*"), _http_post_multipart_application_dicom';
// Slicer's DICOMweb import drives the Python dicomweb-client: search_for_series, retrieve_series_metadata, iter_series, retrieve_instance.
const SLICER = 'Slicer Modules/Scripted/DICOMLib/DICOMUtils.py: importFromDICOMWeb → dicomweb_client.api.DICOMwebClient';
const WEASIS_QIDO = 'Weasis weasis-dicom-explorer .../rs/RsQueryResult.java, .../wado/ThumbnailManager.java: Accept application/dicom+json';
const WEASIS_RETRIEVE = 'Weasis .../rs/RsQueryResult.java (type="application/dicom"; + P_ACCEPT_EXT, default transfer-syntax=* in DicomModel.java), .../wado/LoadSeries.java';
const WEASIS_RENDERED = 'Weasis .../rs/RsQueryParams.java, .../wado/ThumbnailManager.java: Accept image/jpeg, /rendered fallback';
const WEASIS_STOW = 'Weasis weasis-dicom-send .../send/StowRS.java: getMultipartPayload';
const ORTHANC_QIDO = 'Orthanc DICOMweb plugin Plugin/DicomWebClient.cpp GetFromServer (/servers/{id}/qido adds no Accept; libcurl sends */*)';
const ORTHANC_RETRIEVE = 'Orthanc DICOMweb plugin Plugin/DicomWebClient.cpp (HasWadoRsUniversalTransferSyntax, default true)';
const ORTHANC_STOW = 'Orthanc DICOMweb plugin Plugin/DicomWebClient.cpp StowClientJob: headers_';
// PS3.18 §8.4 / chapter 6: "A parameter value can be transmitted either as a token or quoted-string. The quoted and unquoted values are equivalent."
const PS318 = 'PS3.18';

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
  { client: 'OHIF (thumbnailRendering: thumbnail)', source: OHIF_CONFIG, resource: 'thumbnail', accept: 'image/jpeg', status: 200, contentType: JPEG },
  { client: 'curl, PS3.18 §8.7.3 example', source: 'PS3.18 §8.7.3.5 (multipart/related without type: the resource default)', resource: 'retrieve', accept: 'multipart/related', status: 200, contentType: DICOM_PARTS },
  { client: 'curl, no Accept', source: 'PS3.18 §8.7.3.5 (no Accept: the default media type)', resource: 'frames', accept: '', status: 200, contentType: OCTET_PARTS },
  { client: 'curl -H "Accept: */*"', source: 'curl default Accept', resource: 'metadata', accept: '*/*', status: 200, contentType: JSON_TYPE },
  // Read on the wire from Debian's orthanc-dicomweb 1.7; its STOW-RS boundary (two UUIDs, 73
  // characters) is in multipart.test.ts, the whole exchange in test/interop/orthanc-dicomweb-client.
  { client: 'Orthanc DICOMweb plugin, servers/…/get', source: ORTHANC, resource: 'series', accept: '*/*', status: 200, contentType: JSON_TYPE },
  { client: 'Orthanc DICOMweb plugin, servers/…/get', source: ORTHANC, resource: 'metadata', accept: '*/*', status: 200, contentType: JSON_TYPE },
  // dicomweb-client, Python (the same package 3D Slicer and many scripts use).
  { client: 'dicomweb-client Python', source: DWC_PY, resource: 'studies', accept: 'application/dicom+json, application/json', status: 200, contentType: JSON_TYPE },
  { client: 'dicomweb-client Python', source: DWC_PY, resource: 'instances', accept: 'application/dicom+json, application/json', status: 200, contentType: JSON_TYPE },
  { client: 'dicomweb-client Python', source: DWC_PY, resource: 'retrieve', accept: 'multipart/related; type="application/dicom"', status: 200, contentType: DICOM_PARTS },
  { client: 'dicomweb-client Python', source: DWC_PY, resource: 'frames', accept: 'multipart/related; type="*/*"', status: 200, contentType: OCTET_PARTS },
  { client: 'dicomweb-client Python', source: DWC_PY, resource: 'bulkdata', accept: 'multipart/related; type="*/*"', status: 200, contentType: OCTET_PARTS },
  { client: 'dicomweb-client Python', source: DWC_PY, resource: 'rendered', accept: 'image/jpeg', status: 200, contentType: JPEG },
  { client: 'dicomweb-client Python', source: DWC_PY, resource: 'store', accept: '', stowContentType: 'multipart/related; type="application/dicom"; boundary="BOUNDARY"', status: 200, contentType: JSON_TYPE },
  // 3D Slicer's DICOMweb import.
  { client: '3D Slicer DICOMweb import', source: SLICER, resource: 'series', accept: 'application/dicom+json, application/json', status: 200, contentType: JSON_TYPE },
  { client: '3D Slicer DICOMweb import', source: SLICER, resource: 'metadata', accept: 'application/dicom+json, application/json', status: 200, contentType: JSON_TYPE },
  { client: '3D Slicer DICOMweb import (bulkRetrieve)', source: SLICER, resource: 'seriesRetrieve', accept: 'multipart/related; type="application/dicom"', status: 200, contentType: DICOM_PARTS },
  { client: '3D Slicer DICOMweb import', source: SLICER, resource: 'retrieve', accept: 'multipart/related; type="application/dicom"', status: 200, contentType: DICOM_PARTS },
  // Weasis: no space after ';', transfer-syntax=* by default.
  { client: 'Weasis', source: WEASIS_QIDO, resource: 'studies', accept: 'application/dicom+json', status: 200, contentType: JSON_TYPE },
  { client: 'Weasis', source: WEASIS_QIDO, resource: 'series', accept: 'application/dicom+json', status: 200, contentType: JSON_TYPE },
  { client: 'Weasis', source: WEASIS_QIDO, resource: 'instances', accept: 'application/dicom+json', status: 200, contentType: JSON_TYPE },
  { client: 'Weasis', source: WEASIS_RETRIEVE, resource: 'seriesRetrieve', accept: 'multipart/related;type="application/dicom";transfer-syntax=*', status: 200, contentType: DICOM_PARTS },
  { client: 'Weasis', source: WEASIS_RETRIEVE, resource: 'retrieve', accept: 'multipart/related;type="application/dicom";transfer-syntax=*', status: 200, contentType: DICOM_PARTS },
  { client: 'Weasis', source: WEASIS_RENDERED, resource: 'rendered', accept: 'image/jpeg', status: 200, contentType: JPEG },
  // Weasis asks for the STOW answer in XML but reads a body only on 202/409; PacsGuard answers DICOM JSON.
  { client: 'Weasis', source: WEASIS_STOW, resource: 'store', accept: 'application/dicom+xml', stowContentType: 'multipart/related;type="application/dicom";boundary=BOUNDARY', status: 200 },
  // Orthanc's DICOMweb plugin as a client (DicomWeb.Servers).
  { client: 'Orthanc DICOMweb client', source: ORTHANC_QIDO, resource: 'studies', accept: '*/*', status: 200, contentType: JSON_TYPE },
  { client: 'Orthanc DICOMweb client', source: ORTHANC_RETRIEVE, resource: 'seriesRetrieve', accept: 'multipart/related; type="application/dicom"; transfer-syntax=*', status: 200, contentType: DICOM_PARTS },
  { client: 'Orthanc DICOMweb client', source: ORTHANC_RETRIEVE, resource: 'retrieve', accept: 'multipart/related; type="application/dicom"; transfer-syntax=*', status: 200, contentType: DICOM_PARTS },
  { client: 'Orthanc DICOMweb client', source: ORTHANC_STOW, resource: 'store', accept: 'application/dicom+json', stowContentType: 'multipart/related; type="application/dicom"; boundary=BOUNDARY', status: 200, contentType: JSON_TYPE },
  // curl as PS3.18's examples write the requests.
  { client: 'curl, PS3.18 §10.6 QIDO-RS', source: `${PS318} §10.6.1 (Accept: application/dicom+json)`, resource: 'studies', accept: 'application/dicom+json', status: 200, contentType: JSON_TYPE },
  { client: 'curl, PS3.18 Annex B.10', source: `${PS318} Annex B.10 (bulk data at its BulkDataURI)`, resource: 'bulkdata', accept: 'multipart/related; type="application/octet-stream"', status: 200, contentType: OCTET_PARTS },
  { client: 'curl, PS3.18 §8.7.3.5.2', source: `${PS318} §8.7.3.5.2 (the default transfer syntax named)`, resource: 'retrieve', accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1', status: 200, contentType: DICOM_PARTS },
  { client: 'curl, PS3.18 §8.7.3.5.2', source: `${PS318} §8.7.3.5.2 (frames in the default transfer syntax)`, resource: 'frames', accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1', status: 200, contentType: OCTET_PARTS },
  { client: 'curl, PS3.18 Annex B.23 form, type unquoted', source: `${PS318} chapter 6 (quoted and unquoted values are equivalent)`, resource: 'store', accept: 'application/dicom+json', stowContentType: 'multipart/related; type=application/dicom; boundary=BOUNDARY', status: 200, contentType: JSON_TYPE },
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
    seriesRetrieve: `/dicomweb/studies/${study}/series/${series}`,
    metadata: `/dicomweb/studies/${study}/series/${series}/metadata`,
    frames: `/dicomweb/studies/${study}/series/${series}/instances/${sop}/frames/1`,
    bulkdata: `/dicomweb/studies/${study}/series/${series}/instances/${sop}/bulkdata/7FE00010`,
    rendered: `/dicomweb/studies/${study}/series/${series}/instances/${sop}/rendered`,
    thumbnail: `/dicomweb/studies/${study}/series/${series}/instances/${sop}/thumbnail`,
    store: '/dicomweb/studies',
  };
  let tech: string;
  let stored = 0;

  beforeAll(async () => {
    s = await startTestServer();
    rad = await s.token('radiologist');
    tech = await s.token('technologist');
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

  it.each(ROWS.map((r) => [r.client, r.resource, r.stowContentType ?? r.accept, r] as const))('%s → %s with %j', async (_client, resource, _header, row) => {
    let res: TestResponse;
    if (row.stowContentType) {
      // Each store sends a new instance of the same study, in the body the client's Content-Type announces.
      stored += 1;
      const boundary = `client-table-${stored}`;
      const dicom = makeInstance({ patientId: 'PAT-33', patientName: 'ROE^ANN', studyUid: study, seriesUid: `${study}.2`, sopUid: `${study}.2.${stored}`, modality: 'CT', rows: 16, columns: 16, seed: 40 + stored });
      res = await httpsCall(`${s.url}${paths[resource]}`, {
        ca: s.ca, method: 'POST',
        headers: { authorization: `Bearer ${tech}`, 'content-type': row.stowContentType.replace('BOUNDARY', boundary), ...(row.accept ? { accept: row.accept } : {}) },
        body: Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), dicom, Buffer.from(`\r\n--${boundary}--\r\n`)]),
      });
    } else {
      res = await httpsCall(`${s.url}${paths[resource]}`, { ca: s.ca, headers: { authorization: `Bearer ${rad}`, ...(row.accept ? { accept: row.accept } : {}) } });
    }
    expect(res.status, `${row.source}: ${res.body.toString().slice(0, 200)}`).toBe(row.status);
    if (row.contentType) expect(String(res.headers['content-type'])).toMatch(row.contentType);
  });
});
