package io.choir.server.watch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.CancelWatch;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.proto.Watch;
import io.choir.proto.WatchEvent;
import io.choir.server.statemachine.Change;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** WatchHub: order, prefix match, resume, the compacted error, slow watchers and the bounds. */
class WatchHubTest {
  private final SimpleMeterRegistry metrics = new SimpleMeterRegistry();

  /** An output that keeps what was sent; written callbacks run at once, or when released (held). */
  static final class Out implements WatchOutput {
    final List<Response> sent = new ArrayList<>();
    final ArrayDeque<Runnable> unwritten = new ArrayDeque<>();
    boolean hold;

    @Override
    public synchronized void send(Response response, Runnable written) {
      sent.add(response);
      if (hold) {
        unwritten.add(written);
      } else {
        written.run();
      }
    }

    void release() {
      hold = false;
      while (!unwritten.isEmpty()) {
        unwritten.poll().run();
      }
    }

    List<WatchEvent> events() {
      List<WatchEvent> all = new ArrayList<>();
      for (Response r : sent) {
        all.addAll(r.getWatchEvents().getEventsList());
      }
      return all;
    }

    List<String> shown() {
      List<String> all = new ArrayList<>();
      for (WatchEvent e : events()) {
        all.add(show(e));
      }
      return all;
    }

    Response last() {
      return sent.get(sent.size() - 1);
    }
  }

  static String show(WatchEvent e) {
    return e.getRevision() + " " + e.getKey().toStringUtf8()
        + (e.getKind() == WatchEvent.Kind.DELETE ? " deleted" : "=" + e.getValue().toStringUtf8())
        + (e.getHasPrev() ? " was " + e.getPrevValue().toStringUtf8() : "");
  }

  private static WatchLimits limits(int events, long buffer) {
    return new WatchLimits(events, 1 << 20, buffer, 100, 10);
  }

  private static Change put(long rev, String key, String value) {
    return new Change(rev, key.getBytes(StandardCharsets.UTF_8), value.getBytes(StandardCharsets.UTF_8), null, 0);
  }

  private static Change putOver(long rev, String key, String value, String prev, long prevVersion) {
    return new Change(rev, key.getBytes(StandardCharsets.UTF_8), value.getBytes(StandardCharsets.UTF_8),
        prev.getBytes(StandardCharsets.UTF_8), prevVersion);
  }

  private static Change delete(long rev, String key, String prev) {
    return new Change(rev, key.getBytes(StandardCharsets.UTF_8), null, prev.getBytes(StandardCharsets.UTF_8), 1);
  }

  private static Watch key(String key, long from) {
    return Watch.newBuilder().setKey(ByteString.copyFromUtf8(key)).setStartRevision(from).build();
  }

  private static Watch prefix(String prefix, long from) {
    return Watch.newBuilder().setKey(ByteString.copyFromUtf8(prefix)).setPrefix(true).setStartRevision(from).build();
  }

  @Test
  void shouldDeliverTheChangesOfAKeyOrAPrefixInOrderEachOnce() {
    WatchHub hub = new WatchHub(limits(100, 1 << 20), metrics);
    hub.replaced(0);
    Out a = new Out();
    Out b = new Out();
    Out all = new Out();
    hub.watch(1, 10, prefix("a/", 0), a);
    hub.watch(1, 11, key("b", 0), b);
    hub.watch(2, 10, prefix("", 0), all);

    hub.applied(List.of(put(1, "a/1", "x"), put(1, "b", "y")), 1);
    hub.applied(List.of(), 2);
    hub.applied(List.of(putOver(3, "a/1", "z", "x", 1), put(3, "ab", "no")), 3);
    hub.applied(List.of(delete(4, "b", "y")), 4);

    assertEquals(Status.OK, a.sent.get(0).getStatus());
    assertEquals(1, a.sent.get(0).getWatchEvents().getStartRevision());
    assertEquals(List.of("1 a/1=x", "3 a/1=z"), a.shown());
    assertEquals(List.of("1 b=y", "4 b deleted"), b.shown());
    assertEquals(List.of("1 a/1=x", "1 b=y", "3 a/1=z", "3 ab=no", "4 b deleted"), all.shown());
    assertEquals(3, all.sent.size() - 1, "one message per revision that had a match: " + all.sent);
    assertEquals(3, hub.watchers());
  }

  @Test
  void shouldStartFromAnOlderRevisionOutOfTheHistoryWithPreviousValuesWhenAsked() {
    WatchHub hub = new WatchHub(limits(100, 1 << 20), metrics);
    hub.replaced(0);
    for (int rev = 1; rev <= 5; rev++) {
      hub.applied(List.of(putOver(rev, "k", "v" + rev, "v" + (rev - 1), rev - 1)), rev);
    }
    Out out = new Out();
    hub.watch(1, 7, Watch.newBuilder().setKey(ByteString.copyFromUtf8("k")).setStartRevision(3).setPrevValue(true)
        .build(), out);
    hub.applied(List.of(putOver(6, "k", "v6", "v5", 5)), 6);

    assertEquals(List.of("3 k=v3 was v2", "4 k=v4 was v3", "5 k=v5 was v4", "6 k=v6 was v5"), out.shown());
  }

  @Test
  void shouldWaitForARevisionNotYetApplied() {
    WatchHub hub = new WatchHub(limits(100, 1 << 20), metrics);
    hub.replaced(0);
    hub.applied(List.of(put(1, "k", "1")), 1);
    Out out = new Out();
    hub.watch(1, 7, key("k", 3), out);
    hub.applied(List.of(put(2, "k", "2")), 2);
    hub.applied(List.of(put(3, "k", "3")), 3);

    assertEquals(List.of("3 k=3"), out.shown());
  }

  @Test
  void shouldRefuseARevisionOlderThanTheHistoryNamingTheOldestKept() {
    WatchHub hub = new WatchHub(limits(3, 1 << 20), metrics);
    hub.replaced(0);
    for (int rev = 1; rev <= 10; rev++) {
      hub.applied(List.of(put(rev, "k", "v" + rev)), rev);
    }
    Out old = new Out();
    hub.watch(1, 7, key("k", 7), old);
    Out ok = new Out();
    hub.watch(1, 8, key("k", 8), ok);

    Response refused = old.sent.get(0);
    assertEquals(Status.INVALID, refused.getStatus());
    assertTrue(refused.getWatchEvents().getCompacted());
    assertEquals(8, refused.getWatchEvents().getOldestRevision());
    assertTrue(refused.getError().contains("revision 7 is compacted: the oldest revision this replica keeps is 8"),
        refused.getError());
    assertEquals(List.of("8 k=v8", "9 k=v9", "10 k=v10"), ok.shown());
    assertEquals(8, hub.oldestRevision());
    assertEquals(1, metrics.counter("choir.watch.refused", "reason", "compacted").count());
  }

  @Test
  void shouldCatchUpASlowWatcherFromTheHistoryOnceItsConnectionDrains() {
    WatchHub hub = new WatchHub(limits(1000, 300), metrics);
    hub.replaced(0);
    Out slow = new Out();
    slow.hold = true;
    hub.watch(1, 7, key("k", 0), slow);
    List<String> expected = new ArrayList<>();
    for (int rev = 1; rev <= 100; rev++) {
      hub.applied(List.of(put(rev, "k", "value-" + rev)), rev);
      expected.add(rev + " k=value-" + rev);
    }
    assertTrue(slow.sent.size() <= 15, "a full buffer (300 bytes, ~30 a message) stops the sends: " + slow.sent.size());

    while (!slow.unwritten.isEmpty()) {
      slow.unwritten.poll().run(); // drains, one write at a time: the hub sends more as room appears
    }

    assertEquals(expected, slow.shown());
    assertEquals(0, metrics.counter("choir.watch.cut_off").count());
  }

  @Test
  void shouldCutOffASlowWatcherOnceTheHistoryHasMovedPastIt() {
    WatchHub hub = new WatchHub(limits(10, 300), metrics);
    hub.replaced(0);
    Out slow = new Out();
    slow.hold = true;
    Out fast = new Out();
    hub.watch(1, 7, key("k", 0), slow);
    hub.watch(2, 7, key("k", 0), fast);
    for (int rev = 1; rev <= 100; rev++) {
      hub.applied(List.of(put(rev, "k", "value-" + rev)), rev);
    }

    Response last = slow.last();
    assertEquals(Status.UNAVAILABLE, last.getStatus());
    assertTrue(last.getError().startsWith("watch cut off"), last.getError());
    assertEquals(1, metrics.counter("choir.watch.cut_off").count());
    assertEquals(1, hub.watchers());
    assertEquals(100, fast.events().size());
    int before = slow.sent.size();
    slow.release();
    hub.applied(List.of(put(101, "k", "more")), 101);
    assertEquals(before, slow.sent.size(), "nothing more after the cut off");
  }

  @Test
  void shouldEndWatchersBehindAReplacedStateAsCompactedAndKeepTheOthers() {
    WatchHub hub = new WatchHub(limits(100, 1 << 20), metrics);
    hub.replaced(4);
    Out behind = new Out();
    Out ahead = new Out();
    hub.watch(1, 7, key("k", 0), behind); // from 5
    hub.watch(1, 8, key("k", 20), ahead);

    hub.replaced(12); // a state transfer: revisions 5..12 are not known one by one

    assertEquals(Status.INVALID, behind.last().getStatus());
    assertTrue(behind.last().getWatchEvents().getCompacted());
    assertEquals(13, behind.last().getWatchEvents().getOldestRevision());
    hub.applied(List.of(put(20, "k", "x")), 20);
    assertEquals(List.of("20 k=x"), ahead.shown());
    assertEquals(1, hub.watchers());
  }

  @Test
  void shouldRefuseOverTheBoundsAndBadRequestsAndCancel() {
    WatchHub hub = new WatchHub(new WatchLimits(100, 1 << 20, 1 << 20, 3, 2, 8), metrics);
    hub.replaced(0);
    Out out = new Out();
    hub.watch(1, 1, key("a", 0), out);
    hub.watch(1, 1, key("b", 0), out);
    assertEquals(Status.INVALID, out.last().getStatus(), "a request id names one watch");
    hub.watch(1, 2, prefix("", 0), out); // every key: allowed, counted as any watcher
    hub.watch(1, 3, key("c", 0), out);
    assertTrue(out.last().getError().contains("max_watchers_per_connection 2"), out.last().getError());
    hub.watch(2, 1, key("c", 0), out);
    hub.watch(3, 1, key("d", 0), out);
    assertEquals(Status.BUSY, out.last().getStatus());
    assertTrue(out.last().getError().contains("max_watchers 3"), out.last().getError());
    hub.watch(3, 2, key("", 0), out);
    assertTrue(out.last().getError().contains("empty key"), out.last().getError());
    hub.watch(3, 3, key("123456789", 0), out);
    assertEquals(Status.TOO_LARGE, out.last().getStatus());
    assertTrue(out.last().getError().contains("max_key_bytes 8"), out.last().getError());

    hub.cancel(1, 9, CancelWatch.newBuilder().setWatchRequestId(1).build(), out);
    assertEquals(Status.OK, out.last().getStatus());
    assertEquals(9, out.last().getRequestId());
    hub.cancel(1, 10, CancelWatch.newBuilder().setWatchRequestId(1).build(), out);
    assertEquals(Status.NOT_FOUND, out.last().getStatus());
    hub.connectionClosed(2);
    assertEquals(1, hub.watchers());
  }

  @Test
  void shouldKeepTheHistoryWithinItsBounds() {
    WatchHub hub = new WatchHub(new WatchLimits(1_000_000, 10_000, 1 << 20, 10, 10), metrics);
    hub.replaced(0);
    for (int rev = 1; rev <= 1000; rev++) {
      hub.applied(List.of(put(rev, "key", "v".repeat(100))), rev);
    }
    double bytes = metrics.get("choir.watch.history.bytes").gauge().value();
    double events = metrics.get("choir.watch.history.events").gauge().value();
    assertTrue(bytes <= 10_000, "history bytes " + bytes);
    assertTrue(events > 10 && events < 100, "history events " + events);
    assertEquals(1000 - events + 1, metrics.get("choir.watch.history.oldest_revision").gauge().value());
  }

  /**
   * Random changes, watchers that start at random revisions, stall and drain at random: each one gets
   * exactly the matching changes from its start, in order, once, or is ended with an error after a
   * prefix of them (never a gap).
   */
  @Test
  void shouldNeverLoseOrRepeatAnEventUnderRandomStalls() {
    long seed = System.nanoTime();
    System.out.println("WatchHubTest random seed " + seed);
    Random random = new Random(seed);
    WatchHub hub = new WatchHub(new WatchLimits(200, 1 << 20, 200 + random.nextInt(2000), 1000, 1000), metrics);
    hub.replaced(0);
    List<Change> applied = new ArrayList<>();
    Map<Out, Watch> watches = new HashMap<>();
    String[] keys = {"a", "a/1", "a/2", "b", "b/1"};
    long rev = 0;
    for (int step = 0; step < 3000; step++) {
      int what = random.nextInt(20);
      if (what == 0 && watches.size() < 40) {
        Out out = new Out();
        out.hold = random.nextBoolean();
        long from = random.nextInt(3) == 0 ? 0 : Math.max(1, rev - random.nextInt(50));
        Watch w = random.nextBoolean() ? key(keys[random.nextInt(keys.length)], from)
            : prefix(keys[random.nextInt(keys.length)].substring(0, random.nextInt(2)), from);
        hub.watch(step, 1, w, out);
        Response first = out.sent.get(0);
        watches.put(out, first.getStatus() == Status.OK
            ? w.toBuilder().setStartRevision(first.getWatchEvents().getStartRevision()).build() : null);
      } else if (what < 4) {
        for (Out out : watches.keySet()) {
          if (random.nextInt(3) == 0) {
            out.release();
            out.hold = random.nextBoolean();
          }
        }
      } else {
        rev++;
        List<Change> changes = new ArrayList<>();
        int n = random.nextInt(3);
        for (int i = 0; i < n; i++) {
          changes.add(put(rev, keys[random.nextInt(keys.length)], "v" + rev + "." + i));
        }
        applied.addAll(changes);
        hub.applied(changes, rev);
      }
    }
    for (Out out : watches.keySet()) {
      out.release();
    }
    for (Map.Entry<Out, Watch> e : watches.entrySet()) {
      Watch w = e.getValue();
      if (w == null) {
        continue; // refused (compacted)
      }
      List<String> expected = new ArrayList<>();
      for (Change c : applied) {
        ByteString k = ByteString.copyFrom(c.key());
        if (c.revision() >= w.getStartRevision() && (w.getPrefix() ? k.startsWith(w.getKey()) : k.equals(w.getKey()))) {
          expected.add(c.revision() + " " + k.toStringUtf8() + "=" + new String(c.value(), StandardCharsets.UTF_8));
        }
      }
      List<String> got = e.getKey().shown();
      boolean ended = e.getKey().last().getStatus() != Status.OK;
      if (ended) {
        assertEquals(expected.subList(0, got.size()), got, "seed " + seed + ": a prefix before the cut off");
      } else {
        assertEquals(expected, got, "seed " + seed + " watch " + w);
      }
    }
  }
}
