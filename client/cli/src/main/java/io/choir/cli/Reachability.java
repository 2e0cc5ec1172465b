package io.choir.cli;

import java.io.IOException;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NoRouteToHostException;
import java.net.UnknownHostException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Reachability is the CLI's check, before a command, that at least one endpoint accepts a TCP
 * connection. The client library retries a refused connect until the request timeout runs out (a
 * replica may be restarting), which is right for a service and wrong for a person at a shell who
 * started no cluster: when every endpoint refuses the connection (or its host does not resolve), the
 * command ends at once with one line naming them. It connects to all endpoints at once and stops at the
 * first that accepts, closing that connection; an endpoint still silent after the budget (a host that
 * drops packets) counts as possibly alive, so the command runs and the client's own timeouts decide.
 */
final class Reachability {
  private Reachability() {}

  /**
   * Why no endpoint can answer, as "127.0.0.1:7301 (connection refused)" (or "a, b (connection
   * refused)" when every endpoint failed the same way), or empty when one accepted a connection, one
   * is still connecting when budgetMs runs out, or an endpoint is not host:port (the client's builder
   * then reports that).
   */
  static Optional<String> noneAnswers(List<String> all, long budgetMs) {
    List<String> endpoints = all.stream().distinct().toList();
    Map<String, String> failures = new LinkedHashMap<>();
    List<SocketChannel> open = new ArrayList<>();
    try (Selector selector = Selector.open()) {
      for (String e : endpoints) {
        InetSocketAddress address = parse(e);
        if (address == null) {
          return Optional.empty();
        }
        if (address.isUnresolved()) {
          failures.put(e, "unknown host");
          continue;
        }
        SocketChannel ch = SocketChannel.open();
        open.add(ch);
        ch.configureBlocking(false);
        try {
          if (ch.connect(address)) {
            return Optional.empty();
          }
          ch.register(selector, SelectionKey.OP_CONNECT, e);
        } catch (IOException ex) {
          failures.put(e, reason(ex));
        }
      }
      long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(budgetMs);
      while (failures.size() < endpoints.size()) {
        long leftMs = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
        if (leftMs <= 0 || selector.select(leftMs) == 0 && System.nanoTime() - deadline >= 0) {
          return Optional.empty(); // some endpoint is still connecting: let the client decide
        }
        for (SelectionKey key : selector.selectedKeys()) {
          try {
            if (((SocketChannel) key.channel()).finishConnect()) {
              return Optional.empty();
            }
          } catch (IOException ex) {
            failures.put((String) key.attachment(), reason(ex));
            key.cancel();
          }
        }
        selector.selectedKeys().clear();
      }
    } catch (IOException e) {
      return Optional.empty(); // no selector: skip the check rather than fail the command
    } finally {
      for (SocketChannel ch : open) {
        try {
          ch.close();
        } catch (IOException ignored) {
          // nothing was sent on it
        }
      }
    }
    return Optional.of(describe(endpoints, failures));
  }

  /** The failures in the order the endpoints were given. */
  private static String describe(List<String> endpoints, Map<String, String> found) {
    Map<String, String> failures = new LinkedHashMap<>();
    endpoints.forEach(e -> failures.put(e, found.get(e)));
    if (failures.values().stream().distinct().count() == 1) {
      return String.join(", ", failures.keySet()) + " (" + failures.values().iterator().next() + ")";
    }
    List<String> parts = new ArrayList<>();
    failures.forEach((e, why) -> parts.add(e + " (" + why + ")"));
    return String.join(", ", parts);
  }

  private static String reason(IOException e) {
    if (e instanceof NoRouteToHostException) {
      return "no route to host";
    }
    if (e instanceof ConnectException) {
      String m = e.getMessage();
      return m == null || m.toLowerCase(Locale.ROOT).contains("refused") ? "connection refused" : m;
    }
    return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
  }

  /** host:port ([v6]:port) resolved, unresolved when the name does not resolve, null when malformed. */
  static InetSocketAddress parse(String endpoint) {
    String s = endpoint.trim();
    int colon = s.lastIndexOf(':');
    if (colon <= 0 || colon == s.length() - 1) {
      return null;
    }
    String host = s.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    } else if (host.contains(":")) {
      return null;
    }
    int port;
    try {
      port = Integer.parseInt(s.substring(colon + 1));
    } catch (NumberFormatException e) {
      return null;
    }
    if (host.isEmpty() || port < 1 || port > 65535) {
      return null;
    }
    try {
      return new InetSocketAddress(InetAddress.getByName(host), port);
    } catch (UnknownHostException e) {
      return InetSocketAddress.createUnresolved(host, port);
    }
  }
}
