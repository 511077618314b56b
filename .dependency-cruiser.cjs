/**
 * Dependency rules (issue #13): every folder may import only folders below it in LAYERS, so
 * dependencies point one way and no folder imports one that imports it back. `npm run depcheck`
 * runs this in CI; a new upward import or any import cycle fails the build.
 *
 * Read top-down: the protocol and core, the codecs, HTTP helpers, bus and stores they build on,
 * the market-data stages (derive, book, feeds, ingest), fan-out and gateway, then access,
 * executions, portfolio, notifications and alerts beside the gateway, and the app wiring it all.
 * docs/architecture.md#folders lists the folders in this order.
 */
const LAYERS = [
  // the wire protocol is the root: dependency-free, shared with the client SDK (browser)
  ['protocol', '^src/protocol/'],
  ['core', '^src/core/'],
  ['codec', '^src/codec/'],
  ['http', '^src/http/'],
  ['bus', '^src/bus/'],
  ['store', '^src/store/'],
  ['derive', '^src/derive/'],
  ['book', '^src/book/'],
  ['feeds-sdk', '^feeds/sdk/'],
  ['feeds-config', '^feeds/config\\.ts$'],
  ['feeds-adapters', '^feeds/(?!sdk/|config\\.ts$|registry\\.ts$)[^/]+/'],
  ['feeds-registry', '^feeds/registry\\.ts$'],
  ['ingest', '^src/ingest/'],
  ['fanout', '^src/fanout/'],
  ['gateway', '^src/gateway/'],
  ['history', '^src/history/'],
  ['access', '^src/access/'],
  ['executions', '^src/executions/'],
  ['portfolio', '^src/portfolio/'],
  ['notifications', '^src/notifications/'],
  ['alerts', '^src/alerts/'],
  ['service-api', '^src/service-api/'],
  ['admin', '^src/admin/'],
  ['ops', '^src/ops/'],
  ['app', '^src/app/'],
  ['workers', '^src/workers/'],
  ['cli', '^src/cli/'],
];

/** Tests, fixtures and fake servers may reach anything. */
const NOT_TESTS = '(^test/|/test/|\\.test\\.ts$)';

const upward = LAYERS.map(([name, from], i) => ({
  name: `no-upward-from-${name}`,
  comment: `${name} may import only layers listed before it in .dependency-cruiser.cjs`,
  severity: 'error',
  from: { path: from, pathNot: NOT_TESTS },
  to: {
    path:
      LAYERS.slice(i + 1)
        .map(([, p]) => `(${p})`)
        .join('|') || '^$',
  },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycles between modules.',
      severity: 'error',
      from: { pathNot: NOT_TESTS },
      to: { circular: true },
    },
    ...upward,
    {
      name: 'adapters-stay-apart',
      comment: 'A provider adapter imports the feed SDK and core, never another adapter.',
      severity: 'error',
      from: { path: '^feeds/([^/]+)/', pathNot: `${NOT_TESTS}|^feeds/(sdk|config\\.ts|registry\\.ts)` },
      to: { path: '^feeds/([^/]+)/', pathNot: '^feeds/($1|sdk)/' },
    },
    {
      name: 'client-sdk-has-no-engine-code',
      comment: 'The client SDK (@tickwire/client) and the dashboard run in browsers: they may import only the SDK and the protocol module.',
      severity: 'error',
      from: { path: '^(src/client|packages/client|web)/' },
      to: { path: '^(src|feeds)/', pathNot: '^src/(client|protocol)/' },
    },
    {
      name: 'react-bindings-use-the-client-package-only',
      comment: '@tickwire/react runs in browsers: it may import react and @tickwire/client (the package), never engine code or the SDK by path.',
      severity: 'error',
      from: { path: '^packages/react/' },
      to: { path: '^(src|feeds|web)/|^packages/(?!react/|client/)' },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^dist/|^packages/[^/]+/dist/|node_modules)' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['tickwire-source', 'import', 'require', 'node', 'default', 'types'] },
  },
};
