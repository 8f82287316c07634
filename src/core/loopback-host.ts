/**
 * Whether a URL's host name is this machine's loopback (`localhost`,
 * `127.0.0.0/8`, `[::1]`): where plain HTTP carries a key or token without
 * crossing a network.
 */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}
