import { DEFAULT_PORT, loadCliEnvironment, type CliEnvironment } from '../core/config.js';
import { OzClient } from '../client/oz-client.js';
import { readCliConfigFile } from './cli-config-file.js';
import { Output, OUTPUT_FORMATS } from './output.js';
import { enumOption } from './parse.js';
import { UsageError } from './usage-error.js';
import { isLoopbackHost } from '../core/loopback-host.js';

/** Global options, as commander parses them. */
export interface GlobalOptions {
  apiKey?: string;
  outputFormat?: string;
  debug?: boolean;
  serverUrl?: string;
  /** `--jq FILTER` (the JSON-printing commands have it): forces json, filtered. */
  jq?: string;
}

const OUTPUT_FORMAT = enumOption('--output-format / WARP_OUTPUT_FORMAT', OUTPUT_FORMATS);

/** What every command gets: an API client, the output, and the environment. */
export interface CliContext {
  client: OzClient;
  out: Output;
  env: CliEnvironment;
  serverUrl: string;
  err: (text: string) => void;
}

/**
 * Resolve the context. Precedence: flag, then environment variable, then the
 * CLI config file written by the local server's first start, then defaults.
 */
export function buildContext(options: GlobalOptions, write: (t: string) => void, err: (t: string) => void): CliContext {
  const env = loadCliEnvironment();
  const file = readCliConfigFile(env.configPath);
  const format = OUTPUT_FORMAT(options.outputFormat ?? env.outputFormat ?? 'pretty');
  const serverUrl = options.serverUrl ?? env.serverUrl ?? file.server_url ?? `http://127.0.0.1:${DEFAULT_PORT}`;
  let parsed: URL;
  try {
    parsed = new URL(serverUrl);
  } catch {
    throw new UsageError(`--server-url / OZ_SERVER_URL: "${serverUrl}" is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UsageError(`--server-url / OZ_SERVER_URL: must be http:// or https:// (got ${parsed.protocol})`);
  }
  if (parsed.protocol === 'http:' && !isLoopbackHost(parsed.hostname)) {
    err(`warning: ${serverUrl} is plain HTTP to another machine; your API key travels unencrypted\n`);
  }
  const apiKey = options.apiKey ?? env.apiKey ?? file.api_key ?? null;
  const client = new OzClient({
    serverUrl,
    apiKey,
    client: 'cli',
    ...(options.debug ? { trace: (line: string) => err(`[debug] ${line}\n`) } : {}),
  });
  return { client, out: new Output(format, write, options.jq ?? null), env, serverUrl, err };
}
