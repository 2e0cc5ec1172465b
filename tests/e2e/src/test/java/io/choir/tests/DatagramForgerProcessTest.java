package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.MessageLite;
import io.choir.client.ChoirClient;
import io.choir.client.ReplicaInfo;
import io.choir.proto.DoViewChange;
import io.choir.proto.Entry;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.proto.Nack;
import io.choir.proto.OpRange;
import io.choir.proto.PreViewChange;
import io.choir.proto.Prepare;
import io.choir.proto.PrepareOk;
import io.choir.proto.Put;
import io.choir.proto.StartView;
import io.choir.proto.StartViewChange;
import io.choir.proto.wire.DatagramHeader;
import io.choir.server.security.ClusterKeys;
import io.choir.server.security.DatagramCodec;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * DatagramForgerProcessTest attacks a 3-replica cluster of real `choir server` processes from outside
 * (issue 10, items 2 and 8): a local process that can reach the multicast group and the peer ports
 * crafts well-formed datagrams of every kind (the attacks of the issue: a PREPARE of a value nobody
 * wrote in the primary's name, PREPARE_OKs acknowledging writes while the backups are stopped,
 * HEARTBEAT_OK, DO_VIEW_CHANGE with commit 1,000,000, START_VIEW, START_VIEW_CHANGE to view 2^63-1,
 * a NACK of the whole log) and replays real datagrams it captured from the group.
 *
 * <p>With a cluster key, whether the forger has no key or a wrong one, every datagram is dropped and
 * counted under its reason (compared exactly, replica by replica), data and checksums do not change
 * and no view changes. Without a key the same forger rewrites the backups and gets writes
 * acknowledged with the backups stopped: that is what the key is for, and it shows the forger is
 * able (a forger that cannot forge would make the first test pass for nothing).
 */
class DatagramForgerProcessTest {
  @TempDir Path dir;

  private static final String[] REASONS = {"unsealed", "bad_seal", "unknown_key", "replay"};

  /** One crafted message: who it claims to be from, its view, type and body. */
  private record Forged(int sender, long view, MessageType type, MessageLite body) {}

  private static Entry put(long op, long view, String key, String value) {
    return Entry.newBuilder().setOp(op).setView(view).setPut(Put.newBuilder()
        .setKey(ByteString.copyFromUtf8(key)).setValue(ByteString.copyFromUtf8(value))).build();
  }

  /** Every kind of message, well formed, aimed at a cluster in view at commit op with that primary. */
  private static List<Forged> everyKind(int primary, long view, long op) {
    List<Forged> all = new ArrayList<>();
    all.add(new Forged(primary, view, MessageType.PREPARE, Prepare.newBuilder().setFirstOp(op + 1)
        .addEntries(put(op + 1, view, "forged/evil", "nobody wrote this")).setCommit(op + 1).build()));
    all.add(new Forged(primary, view, MessageType.HEARTBEAT, Heartbeat.newBuilder().setLastOp(op + 1)
        .setCommit(op + 1).setLowWatermark(1).setRound(7).build()));
    for (int b = 1; b <= 3; b++) {
      if (b == primary) {
        continue;
      }
      all.add(new Forged(b, view, MessageType.PREPARE_OK, PrepareOk.newBuilder().setOp(op + 1).build()));
      all.add(new Forged(b, view, MessageType.HEARTBEAT_OK, HeartbeatOk.newBuilder().setRound(7).setOp(op + 1)
          .build()));
      all.add(new Forged(b, view, MessageType.NACK, Nack.newBuilder().addRanges(OpRange.newBuilder()
          .setFirst(1).setLast(op)).build()));
      all.add(new Forged(b, view + 1, MessageType.DO_VIEW_CHANGE, DoViewChange.newBuilder()
          .setLastNormalView(view).setLastOp(1_000_000).setCommit(1_000_000).setLogFirstOp(1).build()));
      all.add(new Forged(b, Long.MAX_VALUE, MessageType.START_VIEW_CHANGE, StartViewChange.getDefaultInstance()));
      all.add(new Forged(b, view, MessageType.PRE_VIEW_CHANGE, PreViewChange.newBuilder().setView(view + 1)
          .build()));
    }
    for (int s = 1; s <= 3; s++) {
      all.add(new Forged(s, view + 1, MessageType.START_VIEW, StartView.newBuilder().setLastOp(op + 1)
          .setCommit(op + 1).build()));
    }
    return all;
  }

  @Test
  void shouldDropAndCountEveryForgedOrReplayedDatagramWithAKeyAndChangeNothing() throws Exception {
    Path keyFile = dir.resolve("cluster.key");
    ProcessCluster.writeKeyFile(keyFile, PeerWire.randomKey(1, System.nanoTime()));
    try (ProcessCluster cluster = new ProcessCluster(dir, "forger", 3, "", List.of("-Xmx256m"), keyFile);
        PeerWire wire = new PeerWire(cluster)) {
      cluster.startAll();
      try (ChoirClient c = cluster.client(Duration.ofSeconds(20))) {
        List<byte[]> captured;
        try (PeerWire.Capture capture = wire.capture()) {
          for (int i = 0; i < 100; i++) {
            c.put("real/" + i, "v" + i);
          }
          cluster.awaitConverged(c, Duration.ofSeconds(30));
          TimeUnit.MILLISECONDS.sleep(300); // a few heartbeats join the capture
          captured = capture.datagrams();
        }
        assertTrue(captured.size() >= 100, "captured the PREPAREs: " + captured.size());
        assertTrue(captured.stream().allMatch(d -> DatagramHeader.decode(d, d.length).sealed()), "all sealed");
        List<ReplicaInfo> before = cluster.awaitConverged(c, Duration.ofSeconds(30));
        int primary = cluster.awaitPrimary(c, Duration.ofSeconds(10));
        long view = before.get(0).view();
        long op = before.get(0).commit();

        // What each replica must count: by forger, the reason; by destination, who receives it (the
        // group reaches all three); a datagram in a replica's own name is its own (not a drop).
        Map<Integer, Map<String, Long>> expected = new HashMap<>();
        for (int r = 1; r <= 3; r++) {
          expected.put(r, new HashMap<>());
        }
        Map<String, ClusterKeys> forgers = new LinkedHashMap<>();
        forgers.put("unsealed", null);
        forgers.put("bad_seal", PeerWire.randomKey(1, 42)); // the cluster's key id, another key
        forgers.put("unknown_key", PeerWire.randomKey(9, 43));
        int sent = 0;
        for (Map.Entry<String, ClusterKeys> f : forgers.entrySet()) {
          for (Forged m : everyKind(primary, view, op)) {
            DatagramCodec codec = wire.forger(m.sender(), f.getValue());
            byte[] d = codec.encode(m.type().getNumber(), m.view(), m.body().toByteArray());
            sent += sendEverywhere(wire, d, m.sender(), f.getKey(), expected);
          }
        }
        for (byte[] d : captured) {
          sent += sendEverywhere(wire, d, DatagramHeader.decode(d, d.length).sender(), "replay", expected);
        }
        System.out.println("forger: " + sent + " datagrams sent (" + captured.size() + " captured ones replayed"
            + " to every port and the group); expected drops " + expected);

        Map<Integer, Map<String, Long>> base = PeerWire.counters(before, "datagrams_dropped_");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        Map<Integer, Map<String, Long>> deltas;
        do {
          TimeUnit.MILLISECONDS.sleep(200); // polling counters: the replicas give no event
          deltas = deltas(base, PeerWire.counters(cluster.statuses(c), "datagrams_dropped_"));
        } while (!deltas.equals(expected) && System.nanoTime() < deadline);
        TimeUnit.MILLISECONDS.sleep(500); // and nothing more arrives
        deltas = deltas(base, PeerWire.counters(cluster.statuses(c), "datagrams_dropped_"));
        assertEquals(expected, deltas, "every forged and replayed datagram dropped, under its reason");

        List<ReplicaInfo> after = cluster.statuses(c);
        for (int i = 0; i < 3; i++) {
          ReplicaInfo b = before.get(i);
          ReplicaInfo a = after.get(i);
          assertEquals(b.view(), a.view(), "no view change at " + a.id());
          assertEquals(ProcessCluster.counter(b, "view_changes_started"), ProcessCluster.counter(a,
              "view_changes_started"), "no view change started at " + a.id());
          assertEquals(b.applied(), a.applied(), "nothing applied at " + a.id());
          assertEquals(b.checksum(), a.checksum(), "checksum unchanged at " + a.id());
          assertEquals(b.op(), a.op(), "no entry appended at " + a.id());
        }
        assertFalse(c.get("forged/evil").isPresent(), "the forged value is nowhere");

        // Forged PREPARE_OKs while both backups are stopped: the write must not be acknowledged.
        List<Integer> backups = new ArrayList<>(List.of(1, 2, 3));
        backups.remove(Integer.valueOf(primary));
        for (int b : backups) {
          cluster.replica(b).pause();
        }
        CompletableFuture<Long> pending = c.async().put("acked/while-backups-stopped", "x");
        long deadlineOp = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        ReplicaInfo p;
        do {
          p = cluster.status(c, primary);
        } while (p.op() <= op && System.nanoTime() < deadlineOp);
        assertTrue(p.op() > op, "the primary prepared the write: " + p);
        long preparedOp = p.op();
        for (int round = 0; round < 20; round++) {
          for (Map.Entry<String, ClusterKeys> f : forgers.entrySet()) {
            for (int b : backups) {
              byte[] d = wire.forger(b, f.getValue()).encode(MessageType.PREPARE_OK_VALUE, view,
                  PrepareOk.newBuilder().setOp(preparedOp).build().toByteArray());
              wire.send(d, wire.peer(primary));
            }
          }
          TimeUnit.MILLISECONDS.sleep(50); // spread over a second, as acks would come
        }
        TimeUnit.MILLISECONDS.sleep(500);
        Map<String, Long> ackDrops = deltas(base, PeerWire.counters(List.of(cluster.status(c, primary)),
            "datagrams_dropped_")).get(primary); // the backups are stopped: only the primary answers
        for (String reason : List.of("unsealed", "bad_seal", "unknown_key")) {
          assertEquals(expected.get(primary).getOrDefault("datagrams_dropped_" + reason, 0L) + 20 * backups.size(),
              ackDrops.getOrDefault("datagrams_dropped_" + reason, 0L), "forged PREPARE_OKs counted: " + reason);
        }
        assertFalse(pending.isDone(), "a write was acknowledged with both backups stopped");
        assertEquals(op, cluster.status(c, primary).commit(), "the primary's commit did not move");
        for (int b : backups) {
          cluster.replica(b).resume();
        }
        assertTrue(pending.get(30, TimeUnit.SECONDS) > 0, "acknowledged once the real backups answer");
        c.put("final", "write");
        List<ReplicaInfo> end = cluster.awaitConverged(c, Duration.ofSeconds(30));
        System.out.println("forger with a key: " + sent + " + " + 20 * 3 * 2 + " forged PREPARE_OKs, all dropped;"
            + " views " + before.get(0).view() + " -> " + end.get(0).view());
      }
    }
  }

  /**
   * Sends d to every peer port and the group; adds, to each replica that receives it and is not its
   * sender, one drop under reason. Returns the datagrams sent.
   */
  private static int sendEverywhere(PeerWire wire, byte[] d, int sender, String reason,
      Map<Integer, Map<String, Long>> expected) throws Exception {
    List<InetSocketAddress> to = wire.destinations();
    for (int i = 0; i < to.size(); i++) {
      wire.send(d, to.get(i));
      List<Integer> receivers = i < 3 ? List.of(i + 1) : List.of(1, 2, 3);
      for (int r : receivers) {
        if (r != sender) {
          expected.get(r).merge("datagrams_dropped_" + reason, 1L, Long::sum);
        }
      }
    }
    return to.size();
  }

  private static Map<Integer, Map<String, Long>> deltas(Map<Integer, Map<String, Long>> base,
      Map<Integer, Map<String, Long>> now) {
    Map<Integer, Map<String, Long>> out = new HashMap<>();
    now.forEach((id, counters) -> {
      Map<String, Long> d = new HashMap<>();
      counters.forEach((k, v) -> {
        long delta = v - base.getOrDefault(id, Map.of()).getOrDefault(k, 0L);
        if (delta != 0) {
          d.put(k, delta);
        }
      });
      out.put(id, d);
    });
    return out;
  }

  @Test
  void shouldShowThatWithoutAKeyTheSameForgerRewritesBackupsAndAcknowledgesWritesForDeadOnes() throws Exception {
    // On loopback without a key only local users can do this; on a LAN a replica refuses to start
    // without a key (ServerConfig.checkPeerTrust). This is what the key stops.
    try (ProcessCluster cluster = new ProcessCluster(dir, "forger-nokey", 3, "", List.of("-Xmx256m"));
        PeerWire wire = new PeerWire(cluster)) {
      cluster.startAll();
      try (ChoirClient c = cluster.client(Duration.ofSeconds(20))) {
        for (int i = 0; i < 20; i++) {
          c.put("real/" + i, "v" + i);
        }
        List<ReplicaInfo> start = cluster.awaitConverged(c, Duration.ofSeconds(30));
        int primary = cluster.awaitPrimary(c, Duration.ofSeconds(10));
        long view = start.get(0).view();
        List<Integer> backups = new ArrayList<>(List.of(1, 2, 3));
        backups.remove(Integer.valueOf(primary));

        // Both backups stopped; forged PREPARE_OKs in their names get the write acknowledged.
        for (int b : backups) {
          cluster.replica(b).pause();
        }
        CompletableFuture<Long> pending = c.async().put("acked/while-backups-stopped", "x");
        long deadlineOp = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        ReplicaInfo p0;
        do {
          p0 = cluster.status(c, primary);
        } while (p0.op() <= start.get(0).commit() && System.nanoTime() < deadlineOp);
        for (int b : backups) {
          byte[] ack = wire.forger(b, null).encode(MessageType.PREPARE_OK_VALUE, view,
              PrepareOk.newBuilder().setOp(p0.op()).build().toByteArray());
          wire.send(ack, wire.peer(primary));
        }
        long ackedOp = pending.get(10, TimeUnit.SECONDS);
        System.out.println("no key: 2 forged PREPARE_OKs (" + (DatagramHeader.SIZE + 2) + " bytes each) got op "
            + ackedOp + " acknowledged while both backups were stopped");
        assertEquals(p0.op(), ackedOp, "acknowledged with both backups stopped");
        for (int b : backups) {
          cluster.replica(b).resume();
        }

        List<ReplicaInfo> before = cluster.awaitConverged(c, Duration.ofSeconds(30));
        long op = before.get(0).commit();
        view = before.get(0).view();
        primary = cluster.awaitPrimary(c, Duration.ofSeconds(10));
        backups = new ArrayList<>(List.of(1, 2, 3));
        backups.remove(Integer.valueOf(primary));
        Forged prepare = everyKind(primary, view, op).get(0);
        byte[] d = wire.forger(primary, null).encode(MessageType.PREPARE_VALUE, view, prepare.body().toByteArray());
        wire.send(d, wire.group());
        List<Integer> targets = backups;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        boolean applied = false;
        while (!applied && System.nanoTime() < deadline) {
          TimeUnit.MILLISECONDS.sleep(100); // polling status
          applied = targets.stream().allMatch(b -> {
            ReplicaInfo s = cluster.status(c, b);
            return s != null && s.applied() == op + 1;
          });
        }
        ReplicaInfo p = cluster.status(c, primary);
        ReplicaInfo b1 = cluster.status(c, backups.get(0));
        System.out.println("no key: one forged PREPARE (" + d.length + " bytes): backups applied " + b1.applied()
            + " (checksum " + b1.checksum() + "), primary applied " + p.applied() + " (checksum " + p.checksum() + ")");
        assertTrue(applied, "without a key a forged PREPARE in the primary's name is applied by both backups");
        assertEquals(op, p.applied(), "the primary never wrote it");
        assertNotEquals(p.checksum(), b1.checksum(), "the checksums split");
      }
    }
  }
}
