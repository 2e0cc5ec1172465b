package io.choir.tests;

import io.choir.client.ReplicaInfo;
import io.choir.proto.wire.DatagramHeader;
import io.choir.server.security.ClusterKeys;
import io.choir.server.security.DatagramCodec;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.DatagramChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * PeerWire is an outsider on a ProcessCluster's loopback network: it captures the cluster's multicast
 * by joining its group on lo (as any local process can), and sends datagrams it crafts or replays to
 * the replicas' peer ports and to the group. Every socket is IPv4 with IP_MULTICAST_IF = lo and TTL 1:
 * an IPv6 or unconfigured socket would send to the group through the default route (ENVIRONMENT.md),
 * and nothing of a test may leave loopback.
 */
final class PeerWire implements AutoCloseable {
  static final String GROUP = "239.255.77.1";
  /** Most datagrams a capture keeps (a bound: it runs while the cluster is busy). */
  static final int MAX_CAPTURED = 20_000;

  private final ProcessCluster cluster;
  private final NetworkInterface lo;
  private final DatagramChannel out;
  private final InetSocketAddress group;
  private final long clusterHash;

  PeerWire(ProcessCluster cluster) throws IOException {
    this.cluster = cluster;
    this.lo = NetworkInterface.getByName("lo");
    this.group = new InetSocketAddress(InetAddress.getByName(GROUP), cluster.multicastPort());
    this.out = channel();
    this.clusterHash = clusterHash(cluster.clusterId());
  }

  private DatagramChannel channel() throws IOException {
    DatagramChannel ch = DatagramChannel.open(StandardProtocolFamily.INET);
    ch.setOption(StandardSocketOptions.IP_MULTICAST_IF, lo);
    ch.setOption(StandardSocketOptions.IP_MULTICAST_TTL, 1);
    ch.setOption(StandardSocketOptions.SO_SNDBUF, 4 << 20);
    return ch;
  }

  /** ServerConfig.clusterIdHash: FNV-1a 64 of the cluster id (it travels in every header anyway). */
  static long clusterHash(String clusterId) {
    long h = 0xcbf29ce484222325L;
    for (byte b : clusterId.getBytes(StandardCharsets.UTF_8)) {
      h ^= b & 0xff;
      h *= 0x100000001b3L;
    }
    return h;
  }

  long clusterHash() {
    return clusterHash;
  }

  InetSocketAddress group() {
    return group;
  }

  InetSocketAddress peer(int id) {
    return new InetSocketAddress("127.0.0.1", cluster.peerPort(id));
  }

  /** Every destination: each replica's peer port, then the group. */
  List<InetSocketAddress> destinations() {
    List<InetSocketAddress> all = new ArrayList<>();
    for (int id = 1; id <= cluster.size(); id++) {
      all.add(peer(id));
    }
    all.add(group);
    return all;
  }

  void send(byte[] datagram, InetSocketAddress to) throws IOException {
    out.send(ByteBuffer.wrap(datagram), to);
  }

  /**
   * A forger speaking as sender: keys null crafts unsealed datagrams (with a correct checksum), keys a
   * key the cluster does not have seals with it. A high epoch: its nonces are fresh for any window.
   */
  DatagramCodec forger(int sender, ClusterKeys keys) {
    Set<Integer> members = new HashSet<>();
    for (int id = 1; id <= cluster.size(); id++) {
      members.add(id);
    }
    members.add(sender);
    return new DatagramCodec(sender, clusterHash, Set.copyOf(members), keys, DatagramHeader.MAX_EPOCH - 1);
  }

  /** A random key with id keyId. */
  static ClusterKeys randomKey(int keyId, long seed) {
    byte[] k = new byte[ClusterKeys.KEY_BYTES];
    new SplittableRandom(seed).nextBytes(k);
    Map<Integer, byte[]> m = new LinkedHashMap<>();
    m.put(keyId, k);
    return ClusterKeys.of(m);
  }

  /** Captures the group's datagrams on a thread of its own until {@link Capture#close}. */
  Capture capture() throws IOException {
    DatagramChannel ch = channel();
    ch.setOption(StandardSocketOptions.SO_REUSEADDR, true);
    ch.setOption(StandardSocketOptions.SO_RCVBUF, 8 << 20);
    ch.bind(new InetSocketAddress(cluster.multicastPort()));
    ch.join(group.getAddress(), lo);
    return new Capture(ch);
  }

  /** A running capture of the group. */
  static final class Capture implements AutoCloseable {
    private final DatagramChannel ch;
    private final List<byte[]> got = new ArrayList<>();
    private final Thread reader;

    private Capture(DatagramChannel ch) {
      this.ch = ch;
      this.reader = new Thread(() -> {
        ByteBuffer buf = ByteBuffer.allocate(65_536);
        try {
          while (true) {
            buf.clear();
            ch.receive(buf);
            synchronized (got) {
              if (got.size() < MAX_CAPTURED) {
                got.add(Arrays.copyOf(buf.array(), buf.position()));
              }
            }
          }
        } catch (ClosedChannelException closed) {
          // closed: done
        } catch (IOException e) {
          throw new IllegalStateException(e);
        }
      }, "capture");
      reader.setDaemon(true);
      reader.start();
    }

    /** What was captured so far. */
    List<byte[]> datagrams() {
      synchronized (got) {
        return List.copyOf(got);
      }
    }

    @Override
    public void close() throws IOException {
      ch.close();
      try {
        reader.join(5_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /**
   * The kernel's count of datagrams dropped at the sockets bound to any of ports (/proc/net/udp, the
   * last column): those never reached a replica, so no replica counter can account for them.
   */
  static long kernelDrops(Set<Integer> ports) throws IOException {
    long drops = 0;
    for (String line : Files.readAllLines(Path.of("/proc/net/udp"))) {
      String[] f = line.trim().split("\\s+");
      if (f.length < 13 || !f[1].contains(":")) {
        continue;
      }
      int port;
      try {
        port = Integer.parseInt(f[1].substring(f[1].indexOf(':') + 1), 16);
      } catch (NumberFormatException header) {
        continue;
      }
      if (ports.contains(port)) {
        drops += Long.parseLong(f[f.length - 1]);
      }
    }
    return drops;
  }

  /** Each replica's counters whose name starts with prefix, by replica id. */
  static Map<Integer, Map<String, Long>> counters(List<ReplicaInfo> statuses, String prefix) {
    Map<Integer, Map<String, Long>> out = new HashMap<>();
    for (ReplicaInfo r : statuses) {
      Map<String, Long> m = new TreeMap<>();
      r.counters().forEach((k, v) -> {
        if (k.startsWith(prefix)) {
          m.put(k, v);
        }
      });
      out.put(r.id(), m);
    }
    return out;
  }

  @Override
  public void close() throws IOException {
    out.close();
  }
}
