package io.choir.client;

/**
 * Endpoint is one replica's client address. Parsing is strict (host:port, IPv6 in brackets) so a typo
 * in the configuration fails at build time, not as a timeout later.
 */
record Endpoint(String host, int port) {
  static Endpoint parse(String address) {
    if (address == null || address.isBlank()) {
      throw new IllegalArgumentException("endpoint must be host:port, got: " + address);
    }
    String s = address.trim();
    int colon = s.lastIndexOf(':');
    if (colon <= 0 || colon == s.length() - 1) {
      throw new IllegalArgumentException("endpoint must be host:port, got: " + address);
    }
    String host = s.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    } else if (host.contains(":")) {
      throw new IllegalArgumentException("an IPv6 endpoint must be written [address]:port, got: " + address);
    }
    if (host.isEmpty()) {
      throw new IllegalArgumentException("endpoint has an empty host: " + address);
    }
    int port;
    try {
      port = Integer.parseInt(s.substring(colon + 1));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("endpoint port is not a number: " + address, e);
    }
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("endpoint port must be in 1..65535: " + address);
    }
    return new Endpoint(host, port);
  }

  @Override
  public String toString() {
    return host.contains(":") ? "[" + host + "]:" + port : host + ":" + port;
  }
}
