import { BUILTIN_CATALOG, ModelCatalog, type ResolvedModel } from '../core/model-catalog.js';
import type { HarnessType } from '../core/run.js';
import type { ServerDeps } from './deps.js';

const fallbacks = new WeakMap<ServerDeps, ModelCatalog>();

/**
 * The deployment's model catalog. A composition root passes the one it built
 * from `OZ_MODEL_CATALOG`; deps made without one (tests of other layers) get
 * the built-in catalog with their `models.defaultModel`.
 */
export function modelCatalogOf(deps: ServerDeps): ModelCatalog {
  if (deps.modelCatalog) return deps.modelCatalog;
  let catalog = fallbacks.get(deps);
  if (!catalog) {
    catalog = new ModelCatalog(BUILTIN_CATALOG, deps.models.defaultModel);
    fallbacks.set(deps, catalog);
  }
  return catalog;
}

/**
 * A run's model: what it named, resolved against the catalog (a 400 naming
 * `field` and what is allowed when unknown). A run naming none gets the
 * deployment's default for the `oz` harness, which needs a model; the CLI
 * harnesses and `command` keep their own default.
 */
export function chooseModel(deps: ServerDeps, requested: string | undefined, harness: HarnessType, field: string): ResolvedModel | null {
  const catalog = modelCatalogOf(deps);
  if (requested !== undefined) return catalog.resolve(requested, field);
  if (harness !== 'oz' || catalog.defaultModel === null) return null;
  return catalog.resolve(catalog.defaultModel, field);
}
