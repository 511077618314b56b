/**
 * `tickwire/client`: the client SDK, re-exported from its own package `@tickwire/client`
 * (packages/client) so that imports of the engine's `tickwire/client` keep working.
 */
export * from '@tickwire/client';
