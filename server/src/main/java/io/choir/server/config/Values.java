package io.choir.server.config;

import io.choir.server.config.ReplicaAddress.HostPort;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;

/**
 * Values turns one raw value (a YAML scalar: String, Integer, Long, Boolean; a YAML list; or a flag's
 * String) into a setting's typed value, checking it against the setting's {@link Range}. Each refuses
 * with the reason only; {@link Setting#parse} adds the key.
 */
final class Values {
  private Values() {
  }

  static String string(Object v) {
    if (v instanceof Map<?, ?> || v instanceof List<?>) {
      throw new IllegalArgumentException("must be a single value, got " + v);
    }
    return String.valueOf(v).trim();
  }

  static boolean bool(Object v) {
    if (v instanceof Boolean b) {
      return b;
    }
    String s = string(v).toLowerCase(Locale.ROOT);
    if (s.equals("true") || s.equals("false")) {
      return Boolean.parseBoolean(s);
    }
    throw new IllegalArgumentException("must be true or false, got '" + s + "'");
  }

  static String nonEmptyString(Object v) {
    String s = string(v);
    if (s.isEmpty()) {
      throw new IllegalArgumentException("must not be empty");
    }
    return s;
  }

  static String oneOf(Object v, Range.OneOf range) {
    String s = nonEmptyString(v).toLowerCase(Locale.ROOT);
    if (range.values().contains(s)) {
      return s;
    }
    throw new IllegalArgumentException("'" + s + "' is not one of " + range.values());
  }

  static int whole(Object v, Range.Whole range) {
    int n = whole(v, range.zeroMeans() == null ? range.min() : 0, range.max());
    if (range.zeroMeans() != null && n != 0 && n < range.min()) {
      throw new IllegalArgumentException(n + " is neither 0 (" + range.zeroMeans() + ") nor " + range.min()
          + " or more");
    }
    return n;
  }

  static int whole(Object v, int min, int max) {
    long n;
    if (v instanceof Number num && !(v instanceof Double) && !(v instanceof Float)) {
      n = num.longValue();
    } else {
      String s = string(v).replace("_", "");
      try {
        n = Long.parseLong(s);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("'" + v + "' is not a whole number");
      }
    }
    if (n < min || n > max) {
      throw new IllegalArgumentException(n + " is outside " + min + ".." + max);
    }
    return (int) n;
  }

  /** An IPv4 multicast group:port (224-239.x.x.x), normalized. */
  static String multicastGroup(Object v) {
    HostPort hp = HostPort.parse(nonEmptyString(v));
    String[] parts = hp.host().split("\\.");
    int first;
    try {
      first = parts.length == 4 ? Integer.parseInt(parts[0]) : -1;
    } catch (NumberFormatException e) {
      first = -1;
    }
    if (first < 224 || first > 239) {
      throw new IllegalArgumentException("'" + v + "' is not an IPv4 multicast group:port (224-239.x.x.x)");
    }
    return hp.toString();
  }

  /** Empty (off), or host:port with a port in 0..65535 (0: any free port), normalized. */
  static String metricsAddress(Object v) {
    String s = string(v);
    if (s.isEmpty()) {
      return s;
    }
    int colon = s.lastIndexOf(':');
    if (colon <= 0 || colon == s.length() - 1) {
      throw new IllegalArgumentException("'" + s + "' is not host:port");
    }
    int port = whole(s.substring(colon + 1), 0, 65535);
    String host = s.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    return new HostPort(host, port).toString();
  }

  /**
   * The members: a YAML list of {id, client, peer} maps or of "id=h:p/h:p" strings, or the flag form
   * "1=h:p/h:p,2=...". 1 to 7 replicas, ids and addresses unique; sorted by id.
   */
  static List<ReplicaAddress> replicas(Object v) {
    List<ReplicaAddress> out = new ArrayList<>();
    if (v instanceof List<?> list) {
      for (Object item : list) {
        if (item instanceof Map<?, ?> m) {
          Object id = m.get("id");
          Object client = m.get("client");
          Object peer = m.get("peer");
          if (id == null || client == null || peer == null || m.size() != 3) {
            throw new IllegalArgumentException("each replica needs exactly id, client and peer: " + m);
          }
          out.add(new ReplicaAddress(whole(id, 1, 255), HostPort.parse(string(client)),
              HostPort.parse(string(peer))));
        } else {
          out.add(ReplicaAddress.parse(string(item)));
        }
      }
    } else {
      for (String part : nonEmptyString(v).split(",")) {
        out.add(ReplicaAddress.parse(part.trim()));
      }
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException("must list at least one replica");
    }
    if (out.size() > 7) {
      throw new IllegalArgumentException("at most 7 replicas are supported, got " + out.size());
    }
    TreeSet<Integer> ids = new TreeSet<>();
    TreeSet<String> addresses = new TreeSet<>();
    for (ReplicaAddress r : out) {
      if (!ids.add(r.id())) {
        throw new IllegalArgumentException("replica id " + r.id() + " appears twice");
      }
      if (!addresses.add(r.client().toString()) || !addresses.add(r.peer().toString())) {
        throw new IllegalArgumentException("address of replica " + r.id() + " is used twice");
      }
    }
    out.sort((a, b) -> Integer.compare(a.id(), b.id()));
    return List.copyOf(out);
  }
}
