import { parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';
import { devcontainerFieldsSchema, type DevcontainerFields, type DevcontainerSource } from '../../api/environments.js';
import { OzError } from '../../core/errors.js';

/**
 * A devcontainer.json (JSON with comments) as environment fields
 * (docs/environments.md "devcontainer.json"):
 *
 *   image                                      → docker_image
 *   remoteUser, else containerUser             → agent_user (the harness's user; setup stays root)
 *   containerEnv, remoteEnv                    → env (remoteEnv wins; null unsets)
 *   onCreateCommand                            → setup_commands (kept in the snapshot)
 *   updateContentCommand, postCreateCommand    → maintenance_commands, in that order
 *                                                (they run in every run once setup's state
 *                                                is in place: after setup on a cold start,
 *                                                after the restore on a warm one)
 *
 * A lifecycle command is a string (a shell command line), an array (exec
 * form: its words shell-quoted into one line) or an object of named commands
 * (each of them, in the file's order). What this server cannot do (`build`,
 * `dockerFile`, `dockerComposeFile`, non-empty `features`) is answered `feature_not_available` naming it, never
 * ignored; a devcontainer substitution (`${localEnv:…}`) is a 400 naming the
 * key. Other properties (customizations, forwardPorts, …) mean nothing to a
 * headless run and are ignored.
 */

const LIFECYCLE_PHASES = ['onCreateCommand', 'updateContentCommand', 'postCreateCommand'] as const;
const MAINTENANCE_PHASES: readonly string[] = ['updateContentCommand', 'postCreateCommand'];

/** `${localEnv:HOME}`, `${containerWorkspaceFolder}`, …: the devcontainer CLI's substitutions, which only it can answer. */
const SUBSTITUTION =
  /\$\{(?:localEnv|containerEnv|localWorkspaceFolder|containerWorkspaceFolder|localWorkspaceFolderBasename|containerWorkspaceFolderBasename|devcontainerId)\b[^}]*\}/;

/** A word that needs no quoting in a POSIX shell. */
const PLAIN_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function shellQuote(word: string): string {
  return PLAIN_WORD.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Where in the file: `path in owner/repo`. */
function where(source: DevcontainerSource): string {
  return `${source.path} in ${source.owner}/${source.repo}`;
}

function invalid(source: DevcontainerSource, key: string, problem: string): OzError {
  const field = `devcontainer.${key}`;
  return new OzError('invalid_request', `${field}: ${problem} (${where(source)})`, { reason: field });
}

function unavailable(source: DevcontainerSource, key: string, problem: string): OzError {
  const field = `devcontainer.${key}`;
  return new OzError('feature_not_available', `${field}: ${problem} (${where(source)})`, { reason: field });
}

/** Line and column (1-based) of an offset, for the parser's errors. */
function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${(before[before.length - 1]?.length ?? 0) + 1}`;
}

/** An object's properties in the file's order (a repeated key: its last value, as JSON.parse keeps). */
function entries(node: Node): [string, Node][] {
  const out = new Map<string, Node>();
  for (const property of node.children ?? []) {
    const [keyNode, valueNode] = property.children ?? [];
    if (keyNode && valueNode) out.set(String(keyNode.value), valueNode);
  }
  return [...out];
}

function kind(node: Node): string {
  return node.type;
}

/** A string the devcontainer CLI would have substituted is refused, naming its key. */
function literal(source: DevcontainerSource, key: string, value: string): string {
  const found = SUBSTITUTION.exec(value);
  if (found) throw invalid(source, key, `${found[0]} is a devcontainer substitution, which this server does not perform; give the value literally`);
  return value;
}

/** One lifecycle property as command lines, each with the key it came from. */
function commandsOf(source: DevcontainerSource, key: string, node: Node): { command: string; from: string }[] {
  const one = (from: string, value: Node): { command: string; from: string } | null => {
    if (value.type === 'string') {
      const command = literal(source, from, String(value.value));
      return command.trim() === '' ? null : { command, from };
    }
    if (value.type === 'array') {
      const words = (value.children ?? []).map((word, i) => {
        if (word.type !== 'string') throw invalid(source, `${from}[${i}]`, `must be a string (an exec-form command is an array of strings), not ${kind(word)}`);
        return literal(source, `${from}[${i}]`, String(word.value));
      });
      return words.length === 0 ? null : { command: words.map(shellQuote).join(' '), from };
    }
    if (value.type === 'null') return null;
    throw invalid(source, from, `must be a string or an array of strings, not ${kind(value)}`);
  };
  if (node.type === 'object') {
    return entries(node).flatMap(([name, value]) => {
      const made = one(`${key}.${name}`, value);
      return made ? [made] : [];
    });
  }
  const made = one(key, node);
  return made ? [made] : [];
}

/** containerEnv, then remoteEnv over it: string values, or (remoteEnv) null to unset. */
function envOf(source: DevcontainerSource, root: Map<string, Node>): { env: Record<string, string>; from: Map<string, string> } | null {
  const env: Record<string, string> = {};
  const from = new Map<string, string>();
  let given = false;
  for (const key of ['containerEnv', 'remoteEnv'] as const) {
    const node = root.get(key);
    if (!node || node.type === 'null') continue;
    if (node.type !== 'object') throw invalid(source, key, `must be an object of variables, not ${kind(node)}`);
    given = true;
    for (const [name, value] of entries(node)) {
      const field = `${key}.${name}`;
      if (value.type === 'null' && key === 'remoteEnv') {
        delete env[name];
        from.delete(name);
        continue;
      }
      if (value.type !== 'string') throw invalid(source, field, `must be a string, not ${kind(value)}`);
      env[name] = literal(source, field, String(value.value));
      from.set(name, field);
    }
  }
  return given ? { env, from } : null;
}

/** What the file says that this server cannot do: named, never ignored. */
function refuseUnavailable(source: DevcontainerSource, root: Map<string, Node>): void {
  const build = root.get('build');
  if (build && build.type !== 'null') {
    const dockerfile = build.type === 'object' ? entries(build).some(([k]) => k === 'dockerfile') : false;
    throw unavailable(
      source,
      dockerfile ? 'build.dockerfile' : 'build',
      'building an image from a Dockerfile is not available on this server; name a prebuilt image with "image" (or docker_image in the request)',
    );
  }
  const given = (key: string): boolean => (root.get(key)?.type ?? 'null') !== 'null';
  if (given('dockerFile')) throw unavailable(source, 'dockerFile', 'building an image from a Dockerfile is not available on this server; name a prebuilt image with "image"');
  if (given('dockerComposeFile')) throw unavailable(source, 'dockerComposeFile', 'Docker Compose environments are not available on this server; name one image with "image"');
  const features = root.get('features');
  if (features && features.type === 'object' && (features.children?.length ?? 0) > 0) {
    const names = entries(features).map(([k]) => k);
    throw unavailable(
      source,
      'features',
      `dev container features are not available on this server (${names.join(', ')}); use an image that has them, or install them with a setup command`,
    );
  }
  if (features && features.type !== 'object' && features.type !== 'null') throw invalid(source, 'features', `must be an object, not ${kind(features)}`);
}

/** The environment fields of a devcontainer.json's text, validated as the request's own are. */
export function mapDevcontainer(text: string, source: DevcontainerSource): DevcontainerFields {
  const errors: ParseError[] = [];
  const tree = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false, allowEmptyContent: false });
  const first = errors[0];
  if (first) {
    throw new OzError(
      'invalid_request',
      `devcontainer: ${where(source)} is not valid JSON with comments: ${printParseErrorCode(first.error)} at offset ${first.offset} (${lineAndColumn(text, first.offset)})`,
      { reason: 'devcontainer' },
    );
  }
  if (!tree || tree.type !== 'object')
    throw new OzError('invalid_request', `devcontainer: ${where(source)} must hold a JSON object, not ${tree ? kind(tree) : 'nothing'}`, { reason: 'devcontainer' });
  const root = new Map(entries(tree));
  refuseUnavailable(source, root);

  const fields: DevcontainerFields = {};
  /** The file's key each mapped value came from, to name it when the value is refused. */
  const origins = { docker_image: 'image', agent_user: 'remoteUser', setup_commands: [] as string[], maintenance_commands: [] as string[], env: new Map<string, string>() };
  const image = root.get('image');
  if (image && image.type !== 'null') {
    if (image.type !== 'string') throw invalid(source, 'image', `must be a string, not ${kind(image)}`);
    fields.docker_image = literal(source, 'image', String(image.value));
  }
  for (const key of ['remoteUser', 'containerUser'] as const) {
    const user = root.get(key);
    if (!user || user.type === 'null' || fields.agent_user !== undefined) continue;
    if (user.type !== 'string') throw invalid(source, key, `must be a string, not ${kind(user)}`);
    fields.agent_user = literal(source, key, String(user.value));
    origins.agent_user = key;
  }
  const env = envOf(source, root);
  if (env) {
    fields.env = env.env;
    origins.env = env.from;
  }
  const setup: string[] = [];
  const maintenance: string[] = [];
  for (const phase of LIFECYCLE_PHASES) {
    const node = root.get(phase);
    if (!node) continue;
    for (const { command, from } of commandsOf(source, phase, node)) {
      if (MAINTENANCE_PHASES.includes(phase)) {
        maintenance.push(command);
        origins.maintenance_commands.push(from);
      } else {
        setup.push(command);
        origins.setup_commands.push(from);
      }
    }
  }
  if (setup.length > 0) fields.setup_commands = setup;
  if (maintenance.length > 0) fields.maintenance_commands = maintenance;

  const checked = devcontainerFieldsSchema.safeParse(fields);
  if (checked.success) return checked.data;
  const issue = checked.error.issues[0];
  const [field, at] = issue?.path ?? [];
  const message = issue?.message ?? 'is not valid';
  if (field === 'docker_image') throw invalid(source, origins.docker_image, message);
  if (field === 'agent_user') throw invalid(source, origins.agent_user, message);
  if (field === 'env') throw invalid(source, (at !== undefined ? origins.env.get(String(at)) : undefined) ?? 'containerEnv', message);
  if ((field === 'setup_commands' || field === 'maintenance_commands') && typeof at === 'number') {
    throw invalid(source, origins[field][at] ?? LIFECYCLE_PHASES[0], message);
  }
  // The list as a whole (too many commands): the lifecycle properties together.
  throw new OzError('invalid_request', `devcontainer: ${where(source)}: its lifecycle commands make ${String(field)} that the server refuses: ${message}`, {
    reason: 'devcontainer',
  });
}
