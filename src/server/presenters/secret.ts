import type { SecretItem } from '../../api/secrets.js';
import { secretVariable, type Secret } from '../../core/secret.js';
import { toRfc3339 } from '../../core/clock.js';

/** A secret as the API shows it: metadata only; the value is never readable again. */
export function presentSecret(secret: Secret): SecretItem {
  return {
    uid: secret.id,
    name: secret.name,
    type: secret.type,
    scope: secret.scope.type === 'team' ? 'team' : 'personal',
    variable: secretVariable(secret),
    description: secret.description,
    setup_only: secret.setupOnly,
    ...(secret.baseUrl !== undefined ? { base_url: secret.baseUrl } : {}),
    created_at: toRfc3339(secret.createdAt),
    updated_at: toRfc3339(secret.updatedAt),
  };
}
