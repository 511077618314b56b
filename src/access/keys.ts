import { createPublicKey, createSecretKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError } from '../core/errors.js';

/** JWS algorithms tickwire can accept. `none` is not one of them, whatever the configuration. */
export type JwsAlgorithm =
  'HS256' | 'HS384' | 'HS512' | 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA' | 'Ed25519';

export const HMAC_ALGORITHMS: readonly JwsAlgorithm[] = ['HS256', 'HS384', 'HS512'];
const RSA_ALGORITHMS: readonly JwsAlgorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const EC_BY_CURVE: Readonly<Record<string, JwsAlgorithm>> = {
  prime256v1: 'ES256',
  'P-256': 'ES256',
  secp384r1: 'ES384',
  'P-384': 'ES384',
  secp521r1: 'ES512',
  'P-521': 'ES512',
};
export const ASYMMETRIC_ALGORITHMS: readonly JwsAlgorithm[] = [...RSA_ALGORITHMS, 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export function isHmac(alg: string): boolean {
  return (HMAC_ALGORITHMS as readonly string[]).includes(alg);
}

/** A configured verification key and the algorithms it may verify. */
export interface VerificationKey {
  readonly key: KeyObject;
  readonly algorithms: readonly JwsAlgorithm[];
}

export function hmacKey(secret: string): VerificationKey {
  return { key: createSecretKey(Buffer.from(secret, 'utf8')), algorithms: HMAC_ALGORITHMS };
}

/**
 * A public key from PEM (SPKI or certificate), JWK JSON, or a file holding either. Private keys
 * and symmetric JWKs are refused: a public key must never be usable as an HMAC secret.
 */
export function publicKey(source: string): VerificationKey {
  let text = source.trim();
  if (!text.startsWith('-----') && !text.startsWith('{')) {
    if (!existsSync(text)) {
      throw new ConfigError('auth.jwtPublicKey (TICKWIRE_JWT_PUBLIC_KEY) is neither a PEM block, a JWK (JSON) nor a readable file path');
    }
    text = readFileSync(text, 'utf8').trim();
  }
  let key: KeyObject;
  try {
    if (text.startsWith('{')) {
      const jwk = JSON.parse(text) as Record<string, unknown>;
      if (jwk.kty === 'oct') throw new Error('a symmetric JWK (kty "oct") is not a public key: use TICKWIRE_JWT_SECRET for HMAC');
      if ('d' in jwk) throw new Error('this JWK holds a private key: configure the public part only');
      key = createPublicKey({ key: jwk as never, format: 'jwk' });
    } else {
      if (/PRIVATE KEY-----/.test(text)) throw new Error('this PEM holds a private key: configure the public key (BEGIN PUBLIC KEY)');
      key = createPublicKey(text);
    }
  } catch (err) {
    throw new ConfigError(`auth.jwtPublicKey (TICKWIRE_JWT_PUBLIC_KEY) cannot be loaded: ${(err as Error).message}`, { cause: err });
  }
  return { key, algorithms: algorithmsForPublicKey(key) };
}

/** The algorithms a public key can verify, from its type (and curve). */
export function algorithmsForPublicKey(key: KeyObject): JwsAlgorithm[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return [...RSA_ALGORITHMS];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const alg = EC_BY_CURVE[key.asymmetricKeyDetails?.namedCurve ?? ''];
      if (!alg) throw new ConfigError(`auth.jwtPublicKey: unsupported EC curve ${key.asymmetricKeyDetails?.namedCurve ?? '?'}: use P-256, P-384 or P-521`);
      return [alg];
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      throw new ConfigError(`auth.jwtPublicKey: unsupported key type ${key.asymmetricKeyType ?? '?'}: use RSA, EC (P-256/384/521) or Ed25519`);
  }
}
