package io.choir.jepsen;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Nft writes the nftables scripts the network faults run inside the replica containers (they have
 * NET_ADMIN; the rules live in the container's own network namespace and vanish with it). All rules are
 * in one table, {@code inet jepsen}, with an input and an output chain; healing deletes the table.
 *
 * <p>Partitions are "grudges" as in Jepsen: for every node, the nodes it must not hear from. Dropping on
 * input by source address cuts unicast, TCP (state transfer) and the multicast PREPAREs of the peer, and
 * leaves the harness's clients alone (they arrive from the bridge's gateway address).
 */
public final class Nft {
  /** TABLE is the harness's table (family inet). */
  public static final String TABLE = "jepsen";
  /** MULTICAST is the range the multicast faults act on (the group is 239.255.77.1). */
  public static final String MULTICAST = "239.0.0.0/8";

  private Nft() {}

  /** ensureTable declares the table and its two chains (idempotent). */
  public static String ensureTable() {
    return "table inet " + TABLE + " {\n"
        + "  chain in { type filter hook input priority 0; policy accept; }\n"
        + "  chain out { type filter hook output priority 0; policy accept; }\n"
        + "}\n";
  }

  /** dropFrom drops everything arriving from {@code ips}. */
  public static String dropFrom(Collection<String> ips) {
    if (ips.isEmpty()) {
      return "";
    }
    return "add rule inet " + TABLE + " in ip saddr { " + String.join(", ", new TreeSet<>(ips)) + " } counter drop\n";
  }

  /** dropMulticast drops every multicast datagram arriving (only the group: unicast repair still works). */
  public static String dropMulticast() {
    return "add rule inet " + TABLE + " in ip daddr " + MULTICAST + " counter drop\n";
  }

  /** multicastLoss drops {@code percent}% of arriving multicast datagrams, independently per datagram. */
  public static String multicastLoss(int percent) {
    if (percent < 0 || percent > 100) {
      throw new IllegalArgumentException("percent must be 0..100: " + percent);
    }
    return "add rule inet " + TABLE + " in ip daddr " + MULTICAST + " numgen random mod 100 < " + percent + " counter drop\n";
  }

  /** heal removes the table, whether it exists or not. */
  public static String heal() {
    return "table inet " + TABLE + "\ndelete table inet " + TABLE + "\n";
  }

  /** command is the exec command line that feeds {@code script} to {@code nft -f -}. */
  public static String[] command(String script) {
    return new String[] {"sh", "-c", "nft -f - <<'NFT'\n" + script + "NFT\n"};
  }

  /**
   * Grudge helpers: maps from a node to the nodes it must not hear from. Pure, so the shapes of the
   * partitions are unit-tested without Docker.
   */
  public static final class Grudge {
    private Grudge() {}

    /** isolate cuts {@code node} from every other node, both ways. */
    public static Map<String, Set<String>> isolate(String node, List<String> all) {
      return split(List.of(node), all.stream().filter(n -> !n.equals(node)).toList());
    }

    /** split cuts every node of {@code a} from every node of {@code b}, both ways. */
    public static Map<String, Set<String>> split(Collection<String> a, Collection<String> b) {
      Map<String, Set<String>> g = new TreeMap<>();
      for (String x : a) {
        g.computeIfAbsent(x, k -> new TreeSet<>()).addAll(b);
      }
      for (String y : b) {
        g.computeIfAbsent(y, k -> new TreeSet<>()).addAll(a);
      }
      return g;
    }

    /**
     * ring arranges {@code order} in a ring where every node hears only its nearest neighbours: with 5
     * nodes each sees itself and 2 neighbours, a majority, and no two nodes see the same majority.
     */
    public static Map<String, Set<String>> ring(List<String> order) {
      int n = order.size();
      if (n < 5) {
        throw new IllegalArgumentException("a majorities ring needs at least 5 nodes, got " + n);
      }
      int reach = (n / 2) / 2; // 5 -> 1, 7 -> 1; a window of 2*reach+1 nodes
      if (2 * reach + 1 <= n / 2) {
        reach++; // keep the window a majority
      }
      Map<String, Set<String>> g = new TreeMap<>();
      for (int i = 0; i < n; i++) {
        Set<String> cut = new TreeSet<>();
        for (int j = 0; j < n; j++) {
          int d = Math.min(Math.abs(i - j), n - Math.abs(i - j));
          if (d > reach) {
            cut.add(order.get(j));
          }
        }
        g.put(order.get(i), cut);
      }
      return g;
    }

    /**
     * bridge splits {@code order} into two halves that cannot talk to each other and one node in the
     * middle that talks to both (order[n/2] is the bridge).
     */
    public static Map<String, Set<String>> bridge(List<String> order) {
      int n = order.size();
      if (n < 3) {
        throw new IllegalArgumentException("a bridge needs at least 3 nodes, got " + n);
      }
      return split(order.subList(0, n / 2), order.subList(n / 2 + 1, n));
    }

    /** deaf makes every node of {@code listeners} drop what {@code speaker} sends (one way). */
    public static Map<String, Set<String>> deafTo(String speaker, Collection<String> listeners) {
      Map<String, Set<String>> g = new TreeMap<>();
      for (String l : listeners) {
        if (!l.equals(speaker)) {
          g.put(l, new TreeSet<>(Set.of(speaker)));
        }
      }
      return g;
    }

    /** describe is a compact account such as {@code n1 x {n2,n3}; n2 x {n1}}. */
    public static String describe(Map<String, Set<String>> g) {
      StringBuilder sb = new StringBuilder();
      for (Map.Entry<String, Set<String>> e : g.entrySet()) {
        if (e.getValue().isEmpty()) {
          continue;
        }
        if (sb.length() > 0) {
          sb.append("; ");
        }
        sb.append(e.getKey()).append(" deaf to ").append(String.join(",", e.getValue()));
      }
      return sb.toString();
    }
  }
}
