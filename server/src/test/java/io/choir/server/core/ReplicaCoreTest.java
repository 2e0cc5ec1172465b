package io.choir.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Entry;
import io.choir.proto.Get;
import io.choir.proto.Put;
import io.choir.proto.ReadConsistency;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.config.CoreSettings;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Steps the pure core directly: events in, effects out, no threads, no clock (STYLE.md habit 1). */
class ReplicaCoreTest {
  private static final long T0 = 1_000_000_000L;

  private static CoreConfig config(int maxInFlightOps, int maxQueued) {
    return CoreSettings.defaults(1, List.of(1)).maxKeyBytes(16).maxValueBytes(64).maxBatchOps(4)
        .maxInFlightOps(maxInFlightOps).maxQueuedRequests(maxQueued).readTimeoutNs(1_000_000L).build();
  }

  private static Request put(long clientId, long requestId, String key, String value) {
    return Request.newBuilder().setClientId(clientId).setRequestId(requestId)
        .setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8(key)).setValue(ByteString.copyFromUtf8(value)))
        .build();
  }

  private static Request get(long requestId, String key, ReadConsistency c, long minOp) {
    return Request.newBuilder().setClientId(9).setRequestId(requestId).setConsistency(c).setMinOp(minOp)
        .setGet(Get.newBuilder().setKey(ByteString.copyFromUtf8(key))).build();
  }

  private static Effects step(ReplicaCore core, Event e) {
    Effects out = new Effects();
    core.step(e, T0, out);
    return out;
  }

  private static Event.Applied applied(List<Entry> entries, long checksum) {
    List<Response> replies = new ArrayList<>();
    for (Entry e : entries) {
      replies.add(Response.newBuilder().setRequestId(e.getRequestId()).setVersion(e.getOp()).setOp(e.getOp()).build());
    }
    return new Event.Applied(entries.get(0).getOp(), entries.get(entries.size() - 1).getOp(), replies, checksum);
  }

  @Test
  void shouldReplyOnlyAfterEntryIsPersistedCommittedAndApplied() {
    ReplicaCore core = new ReplicaCore(config(100, 100), RecoveredState.empty());
    Effects e = step(core, new Event.ClientRequest(7, put(1, 1, "k", "v")));
    assertTrue(e.replies().isEmpty() && e.toPersist().isEmpty(), "nothing before the burst ends");
    e = step(core, new Event.Tick());
    assertEquals(1, e.toPersist().size());
    assertEquals(1, e.toPersist().get(0).getOp());
    assertTrue(e.replies().isEmpty(), "no reply before the entry is durable");
    e = step(core, new Event.Persisted(1));
    assertEquals(List.of(1L), e.toApply().stream().map(Entry::getOp).toList(), "one replica is its own quorum");
    assertTrue(e.replies().isEmpty(), "no reply before apply");
    e = step(core, applied(List.of(core.lastOp() == 1 ? e.toApply().get(0) : null), 42));
    assertEquals(1, e.replies().size());
    assertEquals(7, e.replies().get(0).connectionId());
    assertEquals(1, core.appliedOp());
    assertEquals(42, core.checksum());
  }

  @Test
  void shouldGroupOneBurstOfWritesIntoOneLogWrite() {
    ReplicaCore core = new ReplicaCore(config(100, 100), RecoveredState.empty());
    for (int i = 1; i <= 5; i++) {
      assertTrue(step(core, new Event.ClientRequest(1, put(1, i, "k" + i, "v"))).toPersist().isEmpty());
    }
    Effects e = step(core, new Event.Tick());
    assertEquals(List.of(1L, 2L, 3L, 4L, 5L), e.toPersist().stream().map(Entry::getOp).toList());
  }

  @Test
  void shouldAttachRetryOfInFlightRequestToItsEntryInsteadOfLoggingItTwice() {
    ReplicaCore core = new ReplicaCore(config(100, 100), RecoveredState.empty());
    step(core, new Event.ClientRequest(1, put(5, 3, "k", "v")));
    step(core, new Event.Tick());
    Effects retry = step(core, new Event.ClientRequest(2, put(5, 3, "k", "v")));
    assertTrue(step(core, new Event.Tick()).toPersist().isEmpty(), "the retry adds no entry");
    assertTrue(retry.replies().isEmpty());
    Effects p = step(core, new Event.Persisted(1));
    Effects done = step(core, applied(p.toApply(), 1));
    assertEquals(List.of(1L, 2L), done.replies().stream().map(Effects.Reply::connectionId).sorted().toList(),
        "both the original and the retry's connection are answered");
    assertEquals(1, core.counters().duplicates);
  }

  @Test
  void shouldQueueWritesWhenWindowIsFullPauseIntakeAndAnswerBusyBeyondTheQueue() {
    ReplicaCore core = new ReplicaCore(config(2, 1), RecoveredState.empty());
    step(core, new Event.ClientRequest(1, put(1, 1, "a", "v")));
    step(core, new Event.ClientRequest(1, put(1, 2, "b", "v")));
    Effects queued = step(core, new Event.ClientRequest(1, put(1, 3, "c", "v")));
    assertEquals(Optional.of(true), queued.intakePaused(), "a full window stops reading clients");
    assertTrue(queued.replies().isEmpty(), "the first write beyond the window waits");
    Effects busy = step(core, new Event.ClientRequest(1, put(1, 4, "d", "v")));
    assertEquals(Status.BUSY, busy.replies().get(0).responses().get(0).getStatus());
    step(core, new Event.Tick());
    Effects p = step(core, new Event.Persisted(2));
    assertEquals(List.of(1L, 2L), p.toApply().stream().map(Entry::getOp).toList());
    assertEquals(3, core.lastOp(), "commit made room: the queued write is admitted");
    assertEquals(Optional.of(false), p.intakePaused(), "intake resumes once the queue drains");
  }

  @Test
  void shouldServeLinearizableReadOnlyOnceAppliedReachesTheCommitSeenOnArrival() {
    ReplicaCore core = new ReplicaCore(config(100, 100), RecoveredState.empty());
    step(core, new Event.ClientRequest(1, put(1, 1, "k", "v")));
    step(core, new Event.Tick());
    Effects p = step(core, new Event.Persisted(1));
    Effects r = step(core, new Event.ClientRequest(2, get(1, "k", ReadConsistency.LINEARIZABLE, 0)));
    assertTrue(r.reads().isEmpty(), "commit 1 is not applied yet: the read must wait");
    Effects a = step(core, applied(p.toApply(), 1));
    assertEquals(1, a.reads().size());
    assertEquals(2, a.reads().get(0).connectionId());
    Effects now = step(core, new Event.ClientRequest(3, get(2, "k", ReadConsistency.LINEARIZABLE, 0)));
    assertEquals(1, now.reads().size(), "applied = commit: the read runs at once");
  }

  @Test
  void shouldTimeOutASequentialReadThatNeedsAnOpThisReplicaNeverReaches() {
    ReplicaCore core = new ReplicaCore(config(100, 100), RecoveredState.empty());
    Effects out = new Effects();
    core.step(new Event.ClientRequest(1, get(1, "k", ReadConsistency.SEQUENTIAL, 5)), T0, out);
    assertTrue(out.reads().isEmpty());
    assertEquals(T0 + 1_000_000L, out.nextTickNs(), "the core asks for a tick at the read's deadline");
    Effects later = new Effects();
    core.step(new Event.Tick(), T0 + 999_999L, later);
    assertTrue(later.replies().isEmpty());
    core.step(new Event.Tick(), T0 + 1_000_000L, later);
    assertEquals(Status.UNAVAILABLE, later.replies().get(0).responses().get(0).getStatus());
  }

  @Test
  void shouldRefuseEmptyKeysOversizedKeysAndValuesAndRequestsWithoutOperation() {
    ReplicaCore core = new ReplicaCore(config(100, 100), RecoveredState.empty());
    assertEquals(Status.INVALID, reply(core, put(1, 1, "", "v")).getStatus());
    Response bigKey = reply(core, put(1, 2, "k".repeat(17), "v"));
    assertEquals(Status.TOO_LARGE, bigKey.getStatus());
    assertTrue(bigKey.getError().contains("max_key_bytes 16"), bigKey.getError());
    assertEquals(Status.TOO_LARGE, reply(core, put(1, 3, "k", "v".repeat(65))).getStatus());
    assertEquals(Status.INVALID, reply(core, Request.newBuilder().setClientId(1).setRequestId(4).build()).getStatus());
    assertEquals(Status.INVALID, reply(core, put(1, 0, "k", "v")).getStatus(), "session requests need an id");
    assertEquals(0, core.lastOp(), "nothing refused reaches the log");
  }

  private static Response reply(ReplicaCore core, Request r) {
    Effects e = step(core, new Event.ClientRequest(1, r));
    assertEquals(1, e.replies().size());
    return e.replies().get(0).responses().get(0);
  }

  @Test
  void shouldApplyTheRecoveredLogAboveTheAppliedNumberOnStart() {
    Entry e3 = Entry.newBuilder().setOp(3).setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("a"))).build();
    Entry e4 = Entry.newBuilder().setOp(4).setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("b"))).build();
    ReplicaCore core = new ReplicaCore(config(100, 100), new RecoveredState(0, 2, 77, List.of(e3, e4)));
    assertEquals(4, core.commitOp(), "a single replica's durable log is committed");
    Effects e = step(core, new Event.Tick());
    assertEquals(List.of(3L, 4L), e.toApply().stream().map(Entry::getOp).toList());
    assertEquals(Optional.empty(), e.intakePaused());
  }

  @Test
  void shouldRejectAppliedEventsOutOfOrderAsABrokenInvariant() {
    ReplicaCore core = new ReplicaCore(config(100, 100), RecoveredState.empty());
    step(core, new Event.ClientRequest(1, put(1, 1, "k", "v")));
    step(core, new Event.Tick());
    step(core, new Event.Persisted(1));
    assertThrows(IllegalStateException.class,
        () -> step(core, new Event.Applied(2, 2, List.of(Response.getDefaultInstance()), 0)));
  }
}
