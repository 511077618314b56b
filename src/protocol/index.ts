/**
 * Protocol v1 of tickwire, as types and constants: client and server frames discriminated on
 * `op`, payloads per channel kind, error and close codes with their meaning, subprotocol names,
 * limits, and the client-request parser. Shared by the gateway and the client SDK; it has no
 * dependencies (no Node built-ins), so it ships in browser bundles. Reference: docs/protocol.md.
 */
export * from './codes.js';
export * from './errors.js';
export * from './payloads.js';
export * from './channels.js';
export * from './frames.js';
export * from './request.js';
export * from './book.js';
