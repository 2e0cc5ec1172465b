package io.choir.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Entry;
import io.choir.proto.MemberChange;
import io.choir.proto.MessageType;
import io.choir.proto.Put;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.server.config.CoreSettings;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * What the hand-stepped multi-core tests share (ReplicationCoreTest's style, STYLE.md habit 1): cores
 * built from a fixed seed, stepped at times the test chooses, and messages carried between them one by
 * one by the test, so every drop, delay and reordering is written down in the test itself.
 */
final class CoreKit {
  static final long MS = 1_000_000L;
  /** Heartbeat interval of every test core. */
  static final long HB = 50 * MS;
  /**
   * The election (quorum) timeout T: a backup's randomized election timeout lies in [T, 2T), so a
   * backup stepped at 2T after its last word from the primary has always timed out.
   */
  static final long T = 500 * MS;

  private CoreKit() {}

  /** Replica id of an n-replica cluster with ids 1..n; its client address is "r<id>:7000". */
  static CoreConfig.Builder builder(int id, int n) {
    List<Integer> ids = IntStream.rangeClosed(1, n).boxed().toList();
    Map<Integer, String> addresses = new HashMap<>();
    for (int i : ids) {
      addresses.put(i, address(i));
    }
    return CoreSettings.defaults(id, ids).resendAmplificationLimit(0).clientAddresses(addresses).nackDelayNs(2 * MS).heartbeatIntervalNs(HB)
        .quorumTimeoutNs(T).logRetentionMinOps(1000).seed(7);
  }

  static CoreConfig config(int id, int n) {
    return builder(id, n).build();
  }

  /** A change that adds replica id as a learner, at the addresses "r{id}:7000" (client) and "r{id}:7100" (peer). */
  static MemberChange.Builder add(int id) {
    return MemberChange.newBuilder().setKind(MemberChange.Kind.ADD_LEARNER).setId(id)
        .setClientAddress("r" + id + ":7000").setPeerAddress("r" + id + ":7100");
  }

  /** A change of the given kind (promote, remove) of replica id. */
  static MemberChange.Builder kind(MemberChange.Kind kind, int id) {
    return MemberChange.newBuilder().setKind(kind).setId(id);
  }

  static String address(int id) {
    return "r" + id + ":7000";
  }

  /** A replica that never ran before, with nothing on disk. */
  static ReplicaCore fresh(int id, int n) {
    return new ReplicaCore(config(id, n), RecoveredState.empty());
  }

  /**
   * A replica whose storage holds view, lastNormalView and log (nothing applied); restarted says
   * whether it ran before (a restarted primary, or a replica restarted while catching up, rejoins in a
   * view change).
   */
  static RecoveredState state(long view, long lastNormalView, boolean restarted, List<Entry> log) {
    return new RecoveredState(view, lastNormalView, restarted, false, false, 0, 0, 1, log);
  }

  static Effects step(ReplicaCore core, Event e, long nowNs) {
    Effects out = new Effects();
    core.step(e, nowNs, out);
    return out;
  }

  static Effects tick(ReplicaCore core, long nowNs) {
    return step(core, new Event.Tick(), nowNs);
  }

  static List<Effects.Send> sendsOf(Effects e, MessageType type) {
    return e.sends().stream().filter(s -> s.type() == type).toList();
  }

  /** The one message of type in e. */
  static Effects.Send only(Effects e, MessageType type) {
    List<Effects.Send> s = sendsOf(e, type);
    assertEquals(1, s.size(), "exactly one " + type + " in " + e.sends());
    return s.get(0);
  }

  /**
   * The first message of type in e (there is at least one). For START_VIEW, whose count in one step is
   * OpenHolesCoreTest's business (finding 6), the topic tests take the first.
   */
  static Effects.Send first(Effects e, MessageType type) {
    List<Effects.Send> s = sendsOf(e, type);
    assertTrue(!s.isEmpty(), "a " + type + " in " + e.sends());
    return s.get(0);
  }

  /**
   * Carries message s, sent by replica sender, to replica toId: it must be addressed to toId or to
   * every replica (multicast).
   */
  static Effects deliver(Effects.Send s, int sender, ReplicaCore to, int toId, long nowNs) {
    assertTrue(s.to() == Effects.MULTICAST || s.to() == toId, s.type() + " is addressed to " + s.to() + ", not " + toId);
    return step(to, new Event.Peer(sender, s.view(), s.type(), s.body()), nowNs);
  }

  static Entry entry(long op, long view, String key) {
    return entry(op, view, key, "v");
  }

  static Entry entry(long op, long view, String key, String value) {
    return Entry.newBuilder().setOp(op).setView(view).setClientId(1).setRequestId(op)
        .setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8(key)).setValue(ByteString.copyFromUtf8(value)))
        .build();
  }

  /** Entries 1..n of view 0, each with a value of valueBytes bytes. */
  static List<Entry> log(int n, int valueBytes) {
    List<Entry> out = new ArrayList<>();
    for (int op = 1; op <= n; op++) {
      out.add(entry(op, 0, "k" + op, "x".repeat(valueBytes)));
    }
    return out;
  }

  static Request put(long clientId, long requestId, String key) {
    return Request.newBuilder().setClientId(clientId).setRequestId(requestId)
        .setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8(key)).setValue(ByteString.copyFromUtf8("v")))
        .build();
  }

  /** The storage stage's answer to an apply effect: one reply per entry. */
  static Event.Applied applied(List<Entry> entries) {
    List<Response> replies = new ArrayList<>();
    for (Entry e : entries) {
      replies.add(Response.newBuilder().setRequestId(e.getRequestId()).setVersion(e.getOp()).build());
    }
    return new Event.Applied(entries.get(0).getOp(), entries.get(entries.size() - 1).getOp(), replies, 0);
  }

  static List<Long> ops(List<Entry> entries) {
    return entries.stream().map(Entry::getOp).toList();
  }
}
