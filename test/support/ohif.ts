import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The OHIF Viewer release the suite runs, and the registry's integrity of its package. */
export const OHIF_PACKAGE = '@ohif/app@3.13.2';
export const OHIF_INTEGRITY = 'sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA==';

const CACHE = resolve(import.meta.dirname, '../../node_modules/.cache/ohif-app-3.13.2');

/**
 * OHIF's prebuilt application (the package's dist/), fetched once with `npm pack`, its tarball checked
 * against the registry's integrity before anything is unpacked, and kept outside the repository.
 */
export function ohifDist(): string {
  const dist = join(CACHE, 'dist');
  if (existsSync(join(dist, 'index.html'))) return dist;
  const work = mkdtempSync(join(tmpdir(), 'ohif-pack-'));
  try {
    const packed = JSON.parse(execFileSync('npm', ['pack', OHIF_PACKAGE, '--json', '--pack-destination', work], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })) as Array<{ filename: string }>;
    const tarball = join(work, packed[0]?.filename ?? '');
    const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
    if (integrity !== OHIF_INTEGRITY) throw new Error(`${OHIF_PACKAGE}: integrity ${integrity}, the registry says ${OHIF_INTEGRITY}`);
    execFileSync('tar', ['-xzf', tarball, '-C', work]);
    mkdirSync(CACHE, { recursive: true });
    rmSync(dist, { recursive: true, force: true });
    renameSync(join(work, 'package', 'dist'), dist);
    return dist;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** OHIF's data source options this suite varies. */
export interface OhifDataSource {
  readonly omitQuotationForMultipartRequest: boolean;
}

/**
 * The `app-config.js` a deployment writes for OHIF served by PacsGuard at /viewer/: one DICOMweb data
 * source at this origin's /dicomweb (the session cookie goes with every request), thumbnails drawn from
 * frames, PacsGuard's includefield and fuzzy matching used.
 */
export function ohifAppConfig(source: OhifDataSource): string {
  const configuration = {
    friendlyName: 'PacsGuard',
    name: 'pacsguard',
    qidoSupportsIncludeField: true,
    imageRendering: 'wadors',
    thumbnailRendering: 'wadors',
    enableStudyLazyLoad: true,
    supportsFuzzyMatching: true,
    supportsWildcard: true,
    bulkDataURI: { enabled: true },
    omitQuotationForMultipartRequest: source.omitQuotationForMultipartRequest,
  };
  return `window.config = {
  routerBasename: '/viewer/',
  extensions: [],
  modes: [],
  showStudyList: true,
  maxNumberOfWebWorkers: 2,
  showCPUFallbackMessage: false,
  defaultDataSourceName: 'pacsguard',
  dataSources: [{
    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
    sourceName: 'pacsguard',
    configuration: Object.assign(${JSON.stringify(configuration)}, {
      qidoRoot: window.location.origin + '/dicomweb',
      wadoRoot: window.location.origin + '/dicomweb',
      wadoUriRoot: window.location.origin + '/dicomweb',
    }),
  }],
};
`;
}

/**
 * A viewer directory for one server: the cached dist linked file by file (nothing copied), with its own
 * app-config.js, which `configure` rewrites.
 */
export function ohifViewerDirectory(): { directory: string; configure(source: OhifDataSource): void; remove(): void } {
  const dist = ohifDist();
  const directory = mkdtempSync(join(tmpdir(), 'pacsguard-viewer-'));
  for (const name of readdirSync(dist)) {
    if (name !== 'app-config.js') symlinkSync(join(dist, name), join(directory, name));
  }
  return {
    directory,
    configure: (source) => writeFileSync(join(directory, 'app-config.js'), ohifAppConfig(source)),
    remove: () => rmSync(directory, { recursive: true, force: true }),
  };
}
