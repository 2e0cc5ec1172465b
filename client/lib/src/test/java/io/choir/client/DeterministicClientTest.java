package io.choir.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The real dispatcher driven entirely on a simulated clock and network (no Netty, no threads, no
 * sleeps): pipelining, first_incomplete, redirects, retries with the same request id, the attempt
 * timeout and the deadline, each to the simulated nanosecond. Every test prints its seed; replay one
 * with -Dchoir.test.seed=S.
 */
class DeterministicClientTest {
  private static final long MS = 1_000_000L;
  private static final String A = "10.0.0.1:7301";
  private static final String B = "10.0.0.2:7301";
  private static final String C = "10.0.0.3:7301";

  private static long seed(String test) {
    long seed = Long.getLong("choir.test.seed", 20240901L);
    System.out.println(test + " seed=" + seed + " (replay: -Dchoir.test.seed=" + seed + ")");
    return seed;
  }

  /** A world: clock, network, and a client on them. */
  private static final class World {
    final SimClock clock = new SimClock();
    final SimNet net;
    final DeterministicClient client;
    final List<String> trace = new ArrayList<>();

    World(long seed, DeterministicClient.Builder builder, String... endpoints) {
      Random random = new Random(seed);
      net = new SimNet(clock, new Random(random.nextLong()), 1 * MS, 3 * MS);
      client = builder.endpoints(List.of(endpoints)).clientId(0xC11E47L).random(new Random(random.nextLong()))
          .scheduler(clock).transport(net).build();
    }

    World(long seed, String... endpoints) {
      this(seed, DeterministicClient.builder().requestTimeout(Duration.ofSeconds(5))
          .attemptTimeout(Duration.ofSeconds(1)), endpoints);
    }

    /** A replica that answers from store and records what it got (session requests included). */
    SimNet.Replica primary(FakeStore store, String name, List<Request> log) {
      return (conn, request) -> {
        log.add(request);
        trace.add(clock.nanoTime() + " " + name + " " + request.getOpCase() + " id=" + request.getRequestId());
        conn.reply(store.apply(request));
      };
    }

    long nowMs() {
      return clock.nanoTime() / MS;
    }
  }

  private static Throwable failure(CompletableFuture<?> f) {
    assertTrue(f.isCompletedExceptionally(), "expected a failure, got " + f);
    try {
      f.join();
      throw new AssertionError("unreachable");
    } catch (CompletionException e) {
      return Futures.unwrap(e);
    }
  }

  private static Response refusal(Request r, Status status, String primary, long view) {
    return Response.newBuilder().setRequestId(r.getRequestId()).setStatus(status).setPrimaryAddress(primary)
        .setView(view).build();
  }

  @Test
  void shouldPipelineRequestsWithDistinctIdsAndTheLowestOutstandingIdAsFirstIncomplete() {
    long seed = seed("pipelining");
    World w = new World(seed, DeterministicClient.builder().maxInFlight(8), A);
    FakeStore store = new FakeStore(1, 100).enforceSessions();
    List<Request> got = new ArrayList<>();
    TreeSet<Long> outstanding = new TreeSet<>(); // ids sent by the client and not yet answered
    Random answerOrder = new Random(seed);
    List<SimNet.Conn> conns = new ArrayList<>();
    List<Request> held = new ArrayList<>();
    // Hold data requests and answer them in a random order, so first_incomplete must track the
    // lowest unanswered id, not the last one answered.
    w.net.replica(A, (conn, request) -> {
      got.add(request);
      if (request.hasRegisterSession()) {
        conn.reply(store.apply(request));
        return;
      }
      assertTrue(request.getFirstIncomplete() <= request.getRequestId());
      if (!outstanding.isEmpty()) {
        assertTrue(request.getFirstIncomplete() <= outstanding.first(),
            "first_incomplete " + request.getFirstIncomplete() + " above unanswered id " + outstanding.first());
      }
      outstanding.add(request.getRequestId());
      conns.add(conn);
      held.add(request);
      if (held.size() >= 3 || outstanding.size() >= 8) {
        int i = answerOrder.nextInt(held.size());
        Request r = held.remove(i);
        SimNet.Conn c = conns.remove(i);
        outstanding.remove(r.getRequestId());
        c.reply(store.apply(r));
      }
    });
    List<CompletableFuture<Long>> puts = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      puts.add(w.client.async().put("k" + i, "v" + i));
    }
    // Drain the last held ones once everything is sent.
    w.clock.runUntil(() -> got.stream().filter(Request::hasPut).count() == 40, Long.MAX_VALUE);
    while (!held.isEmpty()) {
      Request r = held.remove(0);
      outstanding.remove(r.getRequestId());
      conns.remove(0).reply(store.apply(r));
    }
    w.clock.runUntil(() -> puts.stream().allMatch(CompletableFuture::isDone), Long.MAX_VALUE);

    Set<Long> versions = new HashSet<>();
    for (CompletableFuture<Long> p : puts) {
      versions.add(p.join());
    }
    assertEquals(40, versions.size(), "every put executed once, with its own version");
    List<Request> data = got.stream().filter(Request::hasPut).toList();
    assertEquals(40, data.stream().map(Request::getRequestId).distinct().count(), "distinct ids");
    assertEquals(1, got.stream().filter(Request::hasRegisterSession).count(), "one registration");
    assertTrue(got.get(0).hasRegisterSession(), "the session is registered before the first write arrives");
    assertEquals(1, w.net.connects, "one connection carries everything");
  }

  @Test
  void shouldFollowARedirectWithTheSameRequestIdAndGoStraightToThePrimaryAfterwards() {
    World w = new World(seed("redirect"), A, B);
    FakeStore store = new FakeStore(2, 100).enforceSessions();
    List<Request> atA = new ArrayList<>();
    List<Request> atB = new ArrayList<>();
    w.net.replica(A, (conn, r) -> {
      atA.add(r);
      conn.reply(refusal(r, Status.NOT_PRIMARY, B, 2));
    });
    w.net.replica(B, w.primary(store, "B", atB));
    CompletableFuture<Long> first = w.client.async().put("k", "v");
    w.clock.runUntilDone(first);
    CompletableFuture<Long> second = w.client.async().put("k", "w");
    w.clock.runUntilDone(second);

    assertEquals(100, first.join());
    assertEquals(101, second.join());
    assertEquals(List.of(2L), atA.stream().map(Request::getRequestId).toList(),
        "only the registration (id 2) went to the backup; the put (id 1) waited for it");
    assertEquals(List.of(2L, 1L, 3L), atB.stream().map(Request::getRequestId).toList(),
        "the redirected registration kept its id, and later requests went straight to the primary");
    assertTrue(w.nowMs() < 1_000 + 50, "no backoff for a redirect: done at " + w.nowMs() + " ms");
  }

  @Test
  void shouldRetryWithTheSameRequestIdWhenTheConnectionDropsBeforeTheAnswer() {
    World w = new World(seed("retry"), A, B);
    FakeStore store = new FakeStore(1, 100);
    List<Request> atA = new ArrayList<>();
    List<Request> atB = new ArrayList<>();
    w.net.replica(A, (conn, r) -> {
      atA.add(r);
      if (r.hasPut()) {
        conn.close(); // the request arrived; no answer comes
      } else {
        conn.reply(store.apply(r));
      }
    });
    w.net.replica(B, w.primary(store, "B", atB));
    CompletableFuture<Long> put = w.client.async().put("k", "v");
    w.clock.runUntilDone(put);

    assertEquals(100, put.join());
    Request lost = atA.stream().filter(Request::hasPut).findFirst().orElseThrow();
    Request retried = atB.stream().filter(Request::hasPut).findFirst().orElseThrow();
    assertEquals(lost, retried, "the retry is the same request: same client id, request id and contents");
  }

  @Test
  void shouldEndInTimeoutExactlyAtTheDeadlineWhenNoReplicaAnswers() {
    World w = new World(seed("deadline"), A, B, C);
    List<Request> seen = new ArrayList<>();
    SimNet.Replica silent = (conn, r) -> seen.add(r);
    w.net.replica(A, silent);
    w.net.replica(B, silent);
    w.net.replica(C, silent);
    long startMs = w.nowMs();
    CompletableFuture<?> get = w.client.async().get("k");
    w.clock.runUntilDone(get);

    Throwable e = failure(get);
    assertInstanceOf(ChoirTimeoutException.class, e, "a delivered read with no answer has an unknown outcome");
    assertEquals(startMs + 5_000, w.nowMs(), "failed exactly at the request timeout");
    // One attempt per attempt timeout, moving on each time: 0 s A, 1 s B, 2 s C, 3 s A, 4 s B.
    assertEquals(5, seen.size(), "attempts: " + seen.size());
    assertEquals(1, seen.stream().map(Request::getRequestId).distinct().count(), "always the same id");
  }

  @Test
  void shouldMoveOnFromASilentPrimaryAfterTheAttemptTimeoutAndNotBounceBackOnAStaleHint() {
    World w = new World(seed("silent primary"), A, B, C);
    FakeStore store = new FakeStore(2, 100);
    List<Request> atA = new ArrayList<>();
    List<Request> atB = new ArrayList<>();
    List<Request> atC = new ArrayList<>();
    w.net.replica(A, (conn, r) -> {
      atA.add(r);
      if (r.hasRegisterSession()) {
        conn.reply(store.apply(r)); // A was healthy when the session was opened, then it froze
      }
    });
    // B has not heard of the new view yet and still names A (view 1); C is the new primary (view 2).
    w.net.replica(B, (conn, r) -> {
      atB.add(r);
      conn.reply(refusal(r, Status.NOT_PRIMARY, A, 1));
    });
    w.net.replica(C, w.primary(store, "C", atC));
    long startMs = w.nowMs();
    CompletableFuture<Long> put = w.client.async().put("k", "v");
    w.clock.runUntilDone(put);

    assertEquals(100, put.join());
    long tookMs = w.nowMs() - startMs;
    System.out.println("silent primary: the put succeeded after " + tookMs + " ms (attempt timeout 1000 ms)");
    assertTrue(tookMs >= 1_000 && tookMs < 1_100, "took " + tookMs + " ms");
    assertEquals(1, atA.stream().filter(Request::hasPut).count(), "the stale hint did not send it back to A");
    assertEquals(1, atB.stream().filter(Request::hasPut).count());
    long id = atA.stream().filter(Request::hasPut).findFirst().orElseThrow().getRequestId();
    assertEquals(List.of(id), atC.stream().map(Request::getRequestId).toList(), "the same id at the new primary");

    // The next call does not start at the frozen A.
    CompletableFuture<Long> next = w.client.async().put("k2", "v");
    long before = w.nowMs();
    w.clock.runUntilDone(next);
    assertEquals(101, next.join());
    assertTrue(w.nowMs() - before < 50, "the next write went to a live replica at once");
    assertEquals(1, atA.stream().filter(Request::hasPut).count());
  }

  @Test
  void shouldNotLeaveAPrimaryThatIsSlowButStillAnswering() {
    World w = new World(seed("slow primary"), DeterministicClient.builder().requestTimeout(Duration.ofSeconds(10))
        .attemptTimeout(Duration.ofSeconds(1)).maxInFlight(128), A, B);
    FakeStore store = new FakeStore(1, 100);
    List<Request> atA = new ArrayList<>();
    List<Request> atB = new ArrayList<>();
    // An overloaded primary: one answer every 50 ms, in arrival order, while writes arrive every 10 ms.
    // Its latency grows to about 3 s, three attempt timeouts, yet answers never stop coming.
    ArrayDeque<Runnable> queue = new ArrayDeque<>();
    w.net.replica(A, (conn, r) -> {
      atA.add(r);
      queue.add(() -> conn.reply(store.apply(r)));
    });
    Runnable[] serve = new Runnable[1];
    serve[0] = () -> {
      Runnable next = queue.poll();
      if (next != null) {
        next.run();
      }
      w.clock.schedule(serve[0], 50 * MS);
    };
    w.clock.schedule(serve[0], 50 * MS);
    w.net.replica(B, (conn, r) -> {
      atB.add(r);
      conn.reply(refusal(r, Status.NOT_PRIMARY, A, 1));
    });
    w.clock.runUntilDone(w.client.async().put("warm", "up"));
    List<CompletableFuture<Long>> puts = new ArrayList<>();
    for (int i = 0; i < 80; i++) {
      puts.add(w.client.async().put("k" + i, "v"));
      w.clock.advance(10 * MS);
    }
    long sentAtMs = w.nowMs();
    w.clock.runUntil(() -> puts.stream().allMatch(CompletableFuture::isDone), w.clock.nanoTime() + 60_000 * MS);
    System.out.println("slow primary: the last of 80 writes was answered " + (w.nowMs() - sentAtMs) + " ms after it was sent");
    assertTrue(puts.stream().noneMatch(CompletableFuture::isCompletedExceptionally), "every write succeeded");
    assertTrue(w.nowMs() - sentAtMs > 2_000, "the primary really was slower than the attempt timeout");
    assertEquals(81, atA.stream().filter(Request::hasPut).count(), "each write sent once: none was moved off A");
    assertEquals(0, atB.size(), "nothing was moved onto the backup");
  }

  @Test
  void shouldResetTheConnectionOfATimedOutAttemptSoItsRequestIsNeverDeliveredLate() {
    World w = new World(seed("reset on attempt timeout"), A, B);
    FakeStore store = new FakeStore(1, 100);
    List<Request> atA = new ArrayList<>();
    List<Request> atB = new ArrayList<>();
    w.net.replica(A, w.primary(store, "A", atA));
    w.net.replica(B, w.primary(store, "B", atB));
    w.clock.runUntilDone(w.client.async().put("warm", "up")); // A works, the session is open
    // A firewall cuts the clients off from A for 10 s: TCP would deliver what is queued once it heals.
    w.net.cut(A, 10_000 * MS);
    CompletableFuture<Long> put = w.client.async().put("k", "v");
    w.clock.runUntilDone(put);
    assertEquals(1, atB.stream().filter(Request::hasPut).count(), "moved on to B after the attempt timeout");
    w.clock.advance(20_000 * MS); // the cut heals
    assertEquals(List.of("warm"), atA.stream().filter(Request::hasPut).map(r -> r.getPut().getKey().toStringUtf8()).toList(),
        "the copy queued for A was discarded with the reset, not delivered 10 s late");
  }

  @Test
  void shouldOpenANewSessionUnderTheIdTheReplicasAssignAfterAnExpiry() {
    World w = new World(seed("new id per session"), A);
    FakeStore store = new FakeStore(1, 100).enforceSessions();
    List<Request> atA = new ArrayList<>();
    w.net.replica(A, w.primary(store, "A", atA));
    w.clock.runUntilDone(w.client.async().put("a", "1"));
    long first = w.client.sessionId();
    store.expireSessions();
    CompletableFuture<Long> put = w.client.async().put("b", "2");
    w.clock.runUntilDone(put);
    assertEquals(101, put.join());
    long second = w.client.sessionId();
    assertEquals(List.of(FakeStore.FIRST_SESSION_ID, FakeStore.FIRST_SESSION_ID + 1), List.of(first, second),
        "each session has the id the replicas answered");
    List<Request> registrations = atA.stream().filter(Request::hasRegisterSession).toList();
    assertEquals(List.of(w.client.clientId(), w.client.clientId()),
        registrations.stream().map(Request::getClientId).toList(), "registrations carry the instance id");
    assertEquals(0xC11E47L | Long.MIN_VALUE, w.client.clientId(), "the builder's id, top bit set");
    List<Long> putSessions = atA.stream().filter(Request::hasPut).map(Request::getClientId).toList();
    assertEquals(List.of(first, first, second), putSessions, "b refused in the old session, resent in the new");
    // Whatever still carries the old id can never execute again: its session is gone for good.
    Response stale = store.apply(atA.stream().filter(Request::hasPut).findFirst().orElseThrow());
    assertEquals(Status.SESSION_EXPIRED, stale.getStatus());
  }

  @Test
  void shouldFollowTheHintOfTheNewestViewAndIgnoreOneFromAnOlderView() {
    World w = new World(seed("newest view"), A, B, C);
    FakeStore store = new FakeStore(3, 100);
    List<Request> atA = new ArrayList<>();
    List<Request> atB = new ArrayList<>();
    List<Request> atC = new ArrayList<>();
    // View 5: C is the primary; A, a backup, says so.
    w.net.replica(A, (conn, r) -> {
      atA.add(r);
      conn.reply(refusal(r, Status.NOT_PRIMARY, C, 5));
    });
    w.net.replica(C, w.primary(store, "C", atC));
    w.net.replica(B, w.primary(store, "B", atB));
    CompletableFuture<?> first = w.client.async().get("k");
    w.clock.runUntilDone(first);
    assertTrue(first.isDone() && !first.isCompletedExceptionally(), String.valueOf(first));
    assertEquals(List.of(1, 0, 1), List.of(atA.size(), atB.size(), atC.size()), "A's hint of view 5 was followed");

    // View 6 is being formed: C refuses (UNAVAILABLE, view 6, no primary known yet) and B is the new
    // primary, while A lags and still names C as the primary of view 5. Round robin after C is A;
    // following A's stale hint would lead straight back to C.
    w.net.replica(C, (conn, r) -> {
      atC.add(r);
      conn.reply(refusal(r, Status.UNAVAILABLE, "", 6));
    });
    CompletableFuture<?> second = w.client.async().get("k");
    w.clock.runUntilDone(second);
    assertTrue(second.isDone() && !second.isCompletedExceptionally(), String.valueOf(second));
    assertEquals(List.of(2, 1, 2), List.of(atA.size(), atB.size(), atC.size()),
        "C refused, A's view-5 hint was ignored (older than view 6), B answered");
  }

  @Test
  void shouldReplayTheSameRunFromTheSameSeed() {
    long seed = seed("replay");
    List<String> once = run(seed);
    assertEquals(once, run(seed), "the same seed gives the same run, event by event");
    assertTrue(once.size() > 20, "a run with retries: " + once);
  }

  /** A run with retries and jitter whose trace depends on the seed only. */
  private static List<String> run(long seed) {
    World w = new World(seed, A, B);
    FakeStore store = new FakeStore(1, 100);
    List<Request> atB = new ArrayList<>();
    int[] busy = {0};
    w.net.replica(A, (conn, r) -> {
      w.trace.add(w.clock.nanoTime() + " A " + r.getOpCase() + " id=" + r.getRequestId());
      if (r.hasPut() && busy[0]++ % 3 == 0) {
        conn.reply(refusal(r, Status.BUSY, "", 1));
      } else {
        conn.reply(refusal(r, Status.NOT_PRIMARY, B, 1));
      }
    });
    w.net.replica(B, w.primary(store, "B", atB));
    List<CompletableFuture<Long>> puts = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      puts.add(w.client.async().put("k" + i, "v"));
    }
    w.clock.runUntil(() -> puts.stream().allMatch(CompletableFuture::isDone), Long.MAX_VALUE);
    for (CompletableFuture<Long> p : puts) {
      w.trace.add("result " + (p.isCompletedExceptionally() ? failure(p).getClass().getSimpleName() : p.join()));
    }
    w.trace.add("end " + TimeUnit.NANOSECONDS.toMicros(w.clock.nanoTime()) + " us after " + w.clock.steps() + " steps");
    return w.trace;
  }
}
