package io.choir.server.config;

import java.net.InetSocketAddress;

/**
 * ReplicaAddress is one member of the cluster: its id, the TCP address clients use and the peer address
 * (UDP unicast for PREPARE_OK and NACK, TCP for state transfer).
 */
public record ReplicaAddress(int id, HostPort client, HostPort peer) {
  /** HostPort is a host name or literal and a port. */
  public record HostPort(String host, int port) {
    /** Parses "host:port" (IPv6 literals in brackets), refusing ports outside 1..65535. */
    public static HostPort parse(String text) {
      String s = text.trim();
      int colon = s.lastIndexOf(':');
      if (colon <= 0 || colon == s.length() - 1) {
        throw new IllegalArgumentException("'" + text + "' is not host:port");
      }
      String host = s.substring(0, colon);
      if (host.startsWith("[") && host.endsWith("]")) {
        host = host.substring(1, host.length() - 1);
      }
      int port;
      try {
        port = Integer.parseInt(s.substring(colon + 1));
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("'" + text + "' has a port that is not a number");
      }
      if (port < 1 || port > 65535) {
        throw new IllegalArgumentException("'" + text + "' has port " + port + ", outside 1..65535");
      }
      return new HostPort(host, port);
    }

    public InetSocketAddress toSocketAddress() {
      return new InetSocketAddress(host, port);
    }

    @Override
    public String toString() {
      return host.contains(":") ? "[" + host + "]:" + port : host + ":" + port;
    }
  }

  /** Parses "id=clienthost:port/peerhost:port" (the flag form of one replica). */
  public static ReplicaAddress parse(String text) {
    int eq = text.indexOf('=');
    int slash = text.indexOf('/');
    if (eq <= 0 || slash < eq) {
      throw new IllegalArgumentException(
          "'" + text + "' is not id=client_host:port/peer_host:port");
    }
    int id;
    try {
      id = Integer.parseInt(text.substring(0, eq).trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("'" + text + "' has an id that is not a number");
    }
    return new ReplicaAddress(
        id, HostPort.parse(text.substring(eq + 1, slash)), HostPort.parse(text.substring(slash + 1)));
  }

  @Override
  public String toString() {
    return id + "=" + client + "/" + peer;
  }
}
