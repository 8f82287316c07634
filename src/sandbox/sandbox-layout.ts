/**
 * Where the platform's own files appear inside every sandbox, whatever the
 * backend (docs/sandboxes.md "Inside a sandbox"): `/workspace` (read-write),
 * and under `/oz` (read-only) the platform's node and init, the
 * harness-support client and its `oz`, the run's support socket's directory,
 * the repository mirrors and the worker's tools.
 */
export const WORKSPACE = '/workspace';
/** Repository mirror `i` of `SandboxSpec.mounts`: `/oz/mirrors/<i>`. */
export const MIRRORS_DIR = '/oz/mirrors';
export const INIT_NODE = '/oz/bin/node';
/** The in-sandbox `oz`: `oz harness-support` only. */
export const OZ_CLI = '/oz/bin/oz';

/** Where the sandbox finds the harness-support client, its socket's directory, and `oz` (/oz/bin/oz). */
export const SUPPORT_DIR = '/oz/support';
export const SUPPORT_CLIENT = '/oz/harness-support.mjs';
/** Worker-provided tools (agent CLIs): `/oz/tools/<name>`. */
export const TOOLS_DIR = '/oz/tools';
/**
 * The in-sandbox `oz`: a script for the platform's node (an image need not
 * have a shell), which runs the support client as if it were named itself.
 */
export const OZ_WRAPPER = `#!${INIT_NODE}\nprocess.argv.splice(1, 1, '${SUPPORT_CLIENT}');\nimport('${SUPPORT_CLIENT}');\n`;
export const INIT_SCRIPT = '/oz/init.mjs';

/**
 * Network `allowlist` (docs/network.md): the init listens on the sandbox's own
 * loopback at this port and forwards each connection to the worker's egress
 * proxy, whose socket (`EGRESS_SOCKET`) is in the support directory; the
 * sandbox has no other way out. `HTTP(S)_PROXY` name it.
 */
export const EGRESS_PORT = 3128;
export const EGRESS_SOCKET = 'egress.sock';
export const EGRESS_INIT_FLAG = '--egress';
export const EGRESS_PROXY_URL = `http://127.0.0.1:${EGRESS_PORT}`;
/** The init's arguments under `allowlist`: the port to listen on and the proxy's socket as the sandbox sees it. */
export const egressInitArgs = (): string[] => [EGRESS_INIT_FLAG, String(EGRESS_PORT), `${SUPPORT_DIR}/${EGRESS_SOCKET}`];

/** The host's /etc files a sandbox on the host's system sees (docs/design.md "Sandboxes"): certificates, time zone, the linker's cache. */
export const HOST_ETC = [
  'alternatives',
  'ssl',
  'ca-certificates',
  'ca-certificates.conf',
  'localtime',
  'nsswitch.conf',
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'os-release',
  'protocols',
  'services',
  'gai.conf',
];
