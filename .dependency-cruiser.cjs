/**
 * The layering of the architecture's table of layers (the folders under src/): a layer reaches another only through its
 * index.ts, only the layers the table lets it use, and nothing imports in a circle, type-only imports
 * included. `npm run lint:layers` checks it; CI runs it with the tests.
 */
const layers = ['dicom', 'storage', 'archive', 'identity', 'policy', 'audit', 'analytics', 'assets', 'risk', 'server', 'cli'];
/** What each layer may use besides itself and the shared top-level modules (errors, config). */
const mayUse = {
  dicom: [],
  storage: ['dicom'],
  archive: ['dicom', 'storage'],
  identity: ['storage'],
  policy: ['identity'],
  audit: ['storage'],
  // Alerts and baselines are kept in the index, so analytics reaches storage too.
  analytics: ['audit', 'identity', 'policy', 'storage'],
  assets: ['storage', 'dicom'],
  risk: layers.filter((l) => l !== 'risk' && l !== 'cli'),
  server: layers.filter((l) => l !== 'server' && l !== 'cli'),
  cli: layers.filter((l) => l !== 'cli'),
};

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle (type-only imports included) ties layers or modules that should stand apart.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'layer-internals',
      severity: 'error',
      comment: "Another layer is reached through its index.ts, its public face; the modules behind it may change shape freely.",
      from: { path: '^src/([^/]+)/', pathNot: '\\.test\\.ts$' },
      to: { path: '^src/([^/]+)/', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$', '^src/server/(http|dimse)/index\\.ts$'] },
    },
    ...layers.map((layer) => ({
      name: `layer-${layer}-uses`,
      severity: 'error',
      comment: `${layer}/ may use only ${mayUse[layer].join(', ') || 'nothing else of ours'} (docs: ARCHITECTURE, Layers).`,
      from: { path: `^src/${layer}/`, pathNot: '\\.test\\.ts$' },
      to: { path: '^src/([^/]+)/', pathNot: [`^src/(${[layer, ...mayUse[layer]].join('|')})/`] },
    })),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
