import { canonical, inPrefix, parseAddress, type Bytes } from '../../core/ip-address.js';
import { parseInternalRange } from '../../core/network-policy.js';

/** The internal ranges an operator let a run reach (`allow_internal_ranges`), as a matcher. */
export class EgressRanges {
  private readonly prefixes: [Bytes, number][];

  constructor(ranges: readonly string[]) {
    this.prefixes = ranges.map((text) => {
      const [address, bits] = parseInternalRange(text).split('/');
      const written = parseAddress(address as string) as Bytes;
      const prefix = canonical(written);
      // ::ffff:10.0.0.0/104 is 10.0.0.0/8.
      return [prefix, prefix.length < written.length ? Math.max(0, Number(bits) - 96) : Number(bits)];
    });
  }

  allows(bytes: Bytes): boolean {
    const checked = canonical(bytes);
    return this.prefixes.some(([prefix, bits]) => inPrefix(checked, prefix, bits));
  }
}
