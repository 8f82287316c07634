import type { DevcontainerFields, DevcontainerSource } from '../../api/environments.js';
import { settingDefault } from '../../core/config.js';
import type { ServerDeps } from '../deps.js';
import { mapDevcontainer } from './devcontainer-mapping.js';
import { readGithubFile } from './github-file.js';

/** The team's `github-token` secret (the first by name, if it has several), opened; undefined when it has none. */
async function teamGithubToken(deps: ServerDeps, teamId: string): Promise<string | undefined> {
  const tokens = (await deps.store.secrets.sealedFor(teamId, null)).filter((s) => s.type === 'github-token').sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const secret = tokens[0];
  return secret ? deps.envelope.open({ teamId, ownerUserId: '', name: secret.name }, secret) : undefined;
}

/**
 * The environment fields of a devcontainer.json on GitHub (docs/environments.md
 * "devcontainer.json"), read by the server with the team's `github-token`
 * secret, else anonymously, from `OZ_GITHUB_API_URL`.
 */
export async function devcontainerFields(deps: ServerDeps, teamId: string, source: DevcontainerSource): Promise<DevcontainerFields> {
  const token = await teamGithubToken(deps, teamId);
  const text = await readGithubFile(source, { apiUrl: deps.githubApiUrl ?? settingDefault('githubApiUrl'), token });
  return mapDevcontainer(text, source);
}
