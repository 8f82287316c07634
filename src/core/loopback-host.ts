/**
 * Whether a host name is this machine's loopback (`localhost`,
 * `127.0.0.0/8`, `::1` with or without URL brackets): where plain HTTP
 * carries a key, a token or an image without crossing a network (as Docker
 * treats loopback registries).
 */
export function isLoopbackHost(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return name === 'localhost' || name === '::1' || name === '0:0:0:0:0:0:0:1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}
