package io.choir.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.proto.WatchEvents;
import io.netty.channel.Channel;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The client's watch against scripted replicas: it resumes on another replica from the last delivered
 * revision + 1 after a lost connection, drops repeats, survives a throwing listener, and ends on a
 * compacted refusal with the oldest revision.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ClientWatchTest {
  /** WatchEvent.Kind.PUT of the protocol (its type's name is the client's WatchEvent here). */
  private static final int PUT = 1;

  /** A Response of watch r carrying puts of key k: revision, value, revision, value... */
  private static Response events(Request r, long start, Object... revisionsAndValues) {
    WatchEvents.Builder e = WatchEvents.newBuilder().setStartRevision(start);
    for (int i = 0; i < revisionsAndValues.length; i += 2) {
      e.addEventsBuilder().setRevision((Integer) revisionsAndValues[i]).setKindValue(PUT)
          .setKey(ByteString.copyFromUtf8("k")).setValue(ByteString.copyFromUtf8((String) revisionsAndValues[i + 1]));
    }
    return Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.OK).setWatchEvents(e).build();
  }

  /**
   * From now (0): start 5, events 5 and 6, then the connection drops. From 7: a repeat of 6, then 7, 8.
   */
  private static void script(FakeServer server, Channel channel, Request r) {
    if (!r.hasWatch()) {
      FakeServer.answer(server, channel, r);
      return;
    }
    long from = r.getWatch().getStartRevision();
    if (from == 0) {
      channel.writeAndFlush(events(r, 5, 5, "a", 6, "b"));
      channel.eventLoop().execute(channel::close);
    } else if (from == 7) {
      channel.writeAndFlush(events(r, 7, 6, "b", 7, "c"));
      channel.writeAndFlush(events(r, 7, 8, "d"));
    } else {
      channel.writeAndFlush(Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.INVALID)
          .setError("unexpected start " + from).build());
    }
  }

  @Test
  void shouldResumeElsewhereFromTheLastDeliveredRevisionWithoutRepeats() throws Exception {
    try (FakeServer a = FakeServer.start(ClientWatchTest::script);
        FakeServer b = FakeServer.start(ClientWatchTest::script);
        ChoirClient client = ChoirClient.builder().endpoints(a.address(), b.address())
            .requestTimeout(Duration.ofSeconds(5)).build()) {
      List<String> got = new CopyOnWriteArrayList<>();
      AtomicReference<ChoirException> failed = new AtomicReference<>();
      Watch watch = client.watch(WatchOptions.key("k"), new WatchListener() {
        @Override
        public void onEvent(WatchEvent e) {
          got.add(e.revision() + "=" + e.valueAsString());
          if (e.revision() == 6) {
            throw new IllegalStateException("a throwing listener does not end the watch");
          }
        }

        @Override
        public void onError(ChoirException error) {
          failed.set(error);
        }
      });
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (got.size() < 4 && failed.get() == null && System.nanoTime() < deadline) {
        Thread.sleep(10); // polling, with a deadline
      }
      assertEquals(null, failed.get());
      assertEquals(List.of("5=a", "6=b", "7=c", "8=d"), got);
      assertEquals(9, watch.nextRevision());
      assertTrue(watch.isActive());
      watch.close();
      assertFalse(watch.isActive());
    }
  }

  @Test
  void shouldEndWithTheOldestRevisionWhenTheStartIsCompacted() throws Exception {
    try (FakeServer a = FakeServer.start((s, ch, r) -> ch.writeAndFlush(Response.newBuilder()
            .setRequestId(r.getRequestId()).setStatus(Status.INVALID).setError("revision 3 is compacted")
            .setWatchEvents(WatchEvents.newBuilder().setCompacted(true).setOldestRevision(40)).build()));
        ChoirClient client = ChoirClient.builder().endpoints(a.address()).build()) {
      AtomicReference<ChoirException> failed = new AtomicReference<>();
      Watch watch = client.watch(WatchOptions.key("k").fromRevision(3), new WatchListener() {
        @Override
        public void onEvent(WatchEvent e) {}

        @Override
        public void onError(ChoirException error) {
          failed.set(error);
        }
      });
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (watch.isActive() && System.nanoTime() < deadline) {
        Thread.sleep(10); // polling, with a deadline
      }
      WatchCompactedException e = assertInstanceOf(WatchCompactedException.class, failed.get());
      assertEquals(40, e.oldestRevision());
      assertEquals(3, a.received().get(0).getWatch().getStartRevision());
    }
  }

  /**
   * A replica that no longer keeps the start (restarted: it keeps only what it applied since) does not
   * end the watch while another endpoint still serves it: compacted on a, served by b. Eight fixed
   * client seeds, so that some watches ask a first (checked: a must have been asked).
   */
  @Test
  void shouldTryEveryEndpointBeforeEndingACompactedWatch() throws Exception {
    try (FakeServer a = FakeServer.start((s, ch, r) -> ch.writeAndFlush(Response.newBuilder()
            .setRequestId(r.getRequestId()).setStatus(Status.INVALID).setError("revision 3 is compacted")
            .setWatchEvents(WatchEvents.newBuilder().setCompacted(true).setOldestRevision(40)).build()));
        FakeServer b = FakeServer.start((s, ch, r) -> {
          if (r.hasWatch()) {
            ch.writeAndFlush(events(r, 3, 3, "x", 4, "y"));
          }
        })) {
      for (long seed = 0; seed < 8; seed++) {
        try (ChoirClient client = ChoirClient.builder().endpoints(a.address(), b.address())
            .random(new java.util.Random(seed)).build()) {
          List<String> got = new CopyOnWriteArrayList<>();
          AtomicReference<ChoirException> failed = new AtomicReference<>();
          Watch watch = client.watch(WatchOptions.key("k").fromRevision(3), new WatchListener() {
            @Override
            public void onEvent(WatchEvent e) {
              got.add(e.revision() + "=" + e.valueAsString());
            }

            @Override
            public void onError(ChoirException error) {
              failed.set(error);
            }
          });
          long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
          while (got.size() < 2 && failed.get() == null && System.nanoTime() < deadline) {
            Thread.sleep(10); // polling, with a deadline
          }
          assertEquals(null, failed.get(), "seed " + seed + ": ended on a compacted refusal of one replica");
          assertEquals(List.of("3=x", "4=y"), got, "seed " + seed);
          watch.close();
        }
      }
      assertFalse(a.received().isEmpty(), "no watch asked the compacting replica first: the test proves nothing");
    }
  }
}
