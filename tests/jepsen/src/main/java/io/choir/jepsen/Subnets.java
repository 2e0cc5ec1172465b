package io.choir.jepsen;

/** Subnets has the little IPv4 CIDR arithmetic the harness needs to pick a free subnet. */
final class Subnets {
  private Subnets() {}

  /** overlap tells whether two IPv4 CIDR blocks ("a.b.c.d/len") share an address. */
  static boolean overlap(String a, String b) {
    long[] x = parse(a);
    long[] y = parse(b);
    if (x == null || y == null) {
      return false;
    }
    int len = (int) Math.min(x[1], y[1]);
    long mask = len == 0 ? 0 : (0xffffffffL << (32 - len)) & 0xffffffffL;
    return (x[0] & mask) == (y[0] & mask);
  }

  private static long[] parse(String cidr) {
    int slash = cidr.indexOf('/');
    String ip = slash < 0 ? cidr : cidr.substring(0, slash);
    String[] p = ip.split("\\.");
    if (p.length != 4) {
      return null; // IPv6 or garbage: not our concern
    }
    long v = 0;
    for (String part : p) {
      v = (v << 8) | (Long.parseLong(part) & 0xff);
    }
    int len = slash < 0 ? 32 : Integer.parseInt(cidr.substring(slash + 1));
    return new long[] {v, len};
  }
}
