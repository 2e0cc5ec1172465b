package io.choir.jepsen;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Nft writes the nftables scripts the network faults run inside the replica containers (they have
 * NET_ADMIN; the rules live in the container's own network namespace and vanish with it). The filtering
 * rules are in one table, {@code inet jepsen}, with an input and an output chain; duplication needs a
 * netdev egress hook, so it has a table of its own, {@code netdev jepsen}. Healing deletes both.
 *
 * <p>Partitions are "grudges" as in Jepsen: for every node, the nodes it must not hear from. Dropping on
 * input by source address cuts unicast, TCP (state transfer) and the multicast PREPAREs of the peer, and
 * leaves the harness's clients alone (they arrive from the bridge's gateway address).
 *
 * <p>The repair cut ({@link #repairCut()}) tells the peer messages apart by the raw bytes of the datagram
 * header (io.choir.proto.wire.DatagramHeader: magic u32 'CHOR' at 0, version u8 at 4, message type u8 at
 * 5, ...; the header is 44 bytes, and an unsealed FRAGMENT's body starts with the fragmented message's
 * type, at 44; sealed with a cluster key, that byte is ciphertext). nft's {@code @th,OFFSET,BITS}
 * counts bits from the start of the transport header, so payload byte {@code b} is at bit
 * {@code (8 + b) * 8}: the magic at {@code @th,64,32}, the type at {@code @th,104,8}, a fragment's inner
 * type at {@code @th,416,8}. The type numbers are peer.proto's MessageType, stable on the wire.
 */
public final class Nft {
  /** TABLE is the harness's table (family inet). */
  public static final String TABLE = "jepsen";
  /** MULTICAST is the range the multicast faults act on (the group is 239.255.77.1). */
  public static final String MULTICAST = "239.0.0.0/8";
  /** ALL_MULTICAST is every IPv4 multicast address: what the repair cut must not touch. */
  public static final String ALL_MULTICAST = "224.0.0.0/4";
  /** DEVICE is the containers' interface on the run's network. */
  public static final String DEVICE = "eth0";
  /** DUP_MARK marks the copies {@link #duplicate} makes, so that a copy is not copied again. */
  public static final String DUP_MARK = "0x4a455053"; // "JEPS"

  /** MAGIC is the datagram header's magic number, 'CHOR' (DatagramHeader.MAGIC). */
  static final String MAGIC = "0x43484f52";
  /** Bit offsets from the UDP header's start: 8 bytes of UDP header, then the datagram header. */
  static final int MAGIC_BIT = (8 + 0) * 8;
  static final int TYPE_BIT = (8 + 5) * 8;
  static final int FRAGMENT_INNER_TYPE_BIT = (8 + 44) * 8;
  /** peer.proto MessageType numbers. */
  static final int PREPARE = 1;
  static final int NACK = 4;
  static final int FRAGMENT = 12;

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

  /**
   * repairCut drops, on arrival, every message of the repair path while the normal path still flows:
   *
   * <ul>
   *   <li>NACKs (type 4) and unicast PREPAREs (type 1: resends), and FRAGMENTs (12) of a unicast PREPARE,
   *       to the peer port, only when the destination is not multicast: a multicast PREPARE is the
   *       normal path (a resend the primary multicasts to several askers needs a NACK first, and NACKs
   *       are cut);
   *   <li>TCP to and from the peer port: state transfer (both directions, so a transfer in progress
   *       stalls too).
   * </ul>
   *
   * PREPARE_OK, HEARTBEAT, HEARTBEAT_OK and the view-change messages still pass. The new primary's
   * fill requests during a view change are NACKs too, so a view change that needs them waits for the
   * heal. The magic is matched as well, so only Choir datagrams are touched.
   */
  public static String repairCut() {
    String peer = "ip daddr != " + ALL_MULTICAST + " udp dport " + NodeSpec.PEER_PORT + " @th," + MAGIC_BIT + ",32 "
        + MAGIC + " ";
    return "add rule inet " + TABLE + " in " + peer + "@th," + TYPE_BIT + ",8 { " + PREPARE + ", " + NACK
        + " } counter drop\n"
        + "add rule inet " + TABLE + " in " + peer + "@th," + TYPE_BIT + ",8 " + FRAGMENT + " @th,"
        + FRAGMENT_INNER_TYPE_BIT + ",8 " + PREPARE + " counter drop\n"
        + "add rule inet " + TABLE + " in tcp dport " + NodeSpec.PEER_PORT + " counter drop\n"
        + "add rule inet " + TABLE + " in tcp sport " + NodeSpec.PEER_PORT + " counter drop\n";
  }

  /**
   * duplicate sends {@code percent}% of the replica's peer datagrams (UDP from the peer port: multicast
   * PREPAREs and HEARTBEATs, PREPARE_OKs, NACKs, resends, view-change messages) twice. It is a netdev
   * egress hook on {@link #DEVICE} with {@code dup to} the same device (Linux 5.16 and later). A copy
   * passes the egress hook again, so the rule marks the packet before it copies it and lets marked
   * packets through untouched: without the mark every copy would be copied again, up to the kernel's
   * recursion limit. The mark stays on the sending host (it is cleared when the packet crosses into
   * another network namespace).
   */
  public static String duplicate(int percent) {
    if (percent < 1 || percent > 100) {
      throw new IllegalArgumentException("percent must be 1..100: " + percent);
    }
    String random = percent == 100 ? "" : "numgen random mod 100 < " + percent + " ";
    return "table netdev " + TABLE + " {\n"
        + "  chain egress { type filter hook egress device \"" + DEVICE + "\" priority 0; policy accept; }\n"
        + "}\n"
        + "add rule netdev " + TABLE + " egress meta mark " + DUP_MARK + " counter accept\n"
        + "add rule netdev " + TABLE + " egress udp sport " + NodeSpec.PEER_PORT + " " + random
        + "meta mark set " + DUP_MARK + " counter dup to \"" + DEVICE + "\"\n";
  }

  /**
   * heal removes both tables, whether they exist or not (declaring an empty table first makes the
   * delete succeed either way).
   */
  public static String heal() {
    return "table inet " + TABLE + "\ndelete table inet " + TABLE + "\n"
        + "table netdev " + TABLE + "\ndelete table netdev " + TABLE + "\n";
  }

  /** list prints both tables with their counters (empty when there is none). */
  public static String[] list() {
    return new String[] {"sh", "-c", "nft list table inet " + TABLE + " 2>/dev/null; nft list table netdev " + TABLE
        + " 2>/dev/null; true"};
  }

  /**
   * packets sums the packet counters of the rules in an {@code nft list} output whose line contains
   * {@code part}: with "dup to", "udp sport 7401 ... counter packets 12 bytes 900 dup to ..." counts 12.
   */
  public static long packets(String listing, String part) {
    long sum = 0;
    Pattern counter = Pattern.compile("counter packets (\\d+) bytes");
    for (String line : listing.split("\n")) {
      if (line.contains(part)) {
        Matcher m = counter.matcher(line);
        if (m.find()) {
          sum += Long.parseLong(m.group(1));
        }
      }
    }
    return sum;
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

    /**
     * isolateEach cuts every node of {@code cut} from every other node of {@code all}, both ways (the cut
     * nodes from each other too): each is alone.
     */
    public static Map<String, Set<String>> isolateEach(Collection<String> cut, List<String> all) {
      Map<String, Set<String>> g = new TreeMap<>();
      for (String node : cut) {
        isolate(node, all).forEach((k, v) -> g.computeIfAbsent(k, x -> new TreeSet<>()).addAll(v));
      }
      return g;
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
