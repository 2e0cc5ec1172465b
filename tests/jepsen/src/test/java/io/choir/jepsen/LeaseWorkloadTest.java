package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.checker.Verdict;
import io.choir.client.LeaseNotFoundException;
import io.choir.client.LeaseStatus;
import io.choir.client.VersionedValue;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * LeaseWorkloadTest drives the lease workload on real threads against a fake lease server (100 ms
 * leases), a correct one and two broken ones, and checks what it recorded with the lease checker: the
 * correct server passes, one that deletes keys at half the TTL is caught early, one that never deletes
 * an expired lease's key is caught late and at the final scan. It waits for leases to end, never for a
 * fixed time. Seed: {@code -Dchoir.jepsen.test.seed=N}.
 */
class LeaseWorkloadTest {
  private static final long TTL_MS = 100;

  /** FakeLeases: deadline = apply time + TTL; {@code presentFor} says how long past the apply a key stays. */
  private static final class FakeLeases {
    private final Map<Long, long[]> leases = new HashMap<>(); // id -> {deadline, last keep-alive}
    private final Map<String, Long> keys = new HashMap<>();
    private final String mode;
    private long nextId = 1;

    FakeLeases(String mode) {
      this.mode = mode;
    }

    synchronized LeaseStatus grant(Duration ttl) {
      long now = System.nanoTime();
      long id = nextId++;
      leases.put(id, new long[] {now + ttl.toNanos(), now});
      return new LeaseStatus(id, ttl.toMillis(), ttl.toMillis(), 0);
    }

    synchronized boolean alive(long id, long now) {
      long[] l = leases.get(id);
      return l != null && now < l[0];
    }

    synchronized void keepAlive(long id) {
      long now = System.nanoTime();
      if (!alive(id, now)) {
        throw new LeaseNotFoundException("lease " + id + " not found", id);
      }
      leases.get(id)[0] = now + TimeUnit.MILLISECONDS.toNanos(TTL_MS);
      leases.get(id)[1] = now;
    }

    synchronized void revoke(long id) {
      if (!alive(id, System.nanoTime())) {
        throw new LeaseNotFoundException("lease " + id + " not found", id);
      }
      leases.remove(id);
      keys.values().removeIf(v -> v == id);
    }

    synchronized void put(String key, long id) {
      if (!alive(id, System.nanoTime())) {
        throw new LeaseNotFoundException("lease " + id + " not found", id);
      }
      keys.put(key, id);
    }

    synchronized boolean present(String key) {
      Long id = keys.get(key);
      if (id == null) {
        return false;
      }
      long now = System.nanoTime();
      long[] l = leases.get(id);
      return switch (mode) {
        case "early" -> l != null && now < l[1] + TimeUnit.MILLISECONDS.toNanos(TTL_MS / 2);
        case "never" -> true;
        default -> alive(id, now);
      };
    }

    synchronized List<String> presentKeys() {
      return keys.keySet().stream().filter(this::present).sorted().toList();
    }

    LeaseWorkload.Client client() {
      return new LeaseWorkload.Client() {
        @Override
        public LeaseStatus grantOnce(Duration ttl) {
          return grant(ttl);
        }

        @Override
        public void keepAlive(long id) {
          FakeLeases.this.keepAlive(id);
        }

        @Override
        public void revoke(long id) {
          FakeLeases.this.revoke(id);
        }

        @Override
        public void put(String key, String value, long lease) {
          FakeLeases.this.put(key, lease);
        }

        @Override
        public Optional<VersionedValue> get(String key) {
          return present(key) ? Optional.of(new VersionedValue(key.substring(6).getBytes(StandardCharsets.UTF_8), 1))
              : Optional.empty();
        }

        @Override
        public void close() {}
      };
    }
  }

  private static LeaseChecker.Result run(String mode) throws InterruptedException {
    long seed = TestSeeds.seed("LeaseWorkloadTest", 11);
    FakeLeases fake = new FakeLeases(mode);
    Recorder recorder = new Recorder(null, System::nanoTime);
    LeaseWorkload w = new LeaseWorkload(3, 2, 400, Duration.ofMillis(TTL_MS), Duration.ofSeconds(1), recorder,
        List.of("n1", "n2"), n -> fake.client(), seed);
    w.start();
    Await.until(() -> w.lives().size() >= 30 && w.reads().size() >= 200, Duration.ofSeconds(30),
        () -> "30 leases and 200 reads (seed " + seed + "): " + w.progress());
    w.stop();
    long last = w.latestUpper();
    Await.until(() -> recorder.now() > last, Duration.ofSeconds(5), () -> "past the last deadline");
    List<LeaseChecker.Scan> scans = List.of(new LeaseChecker.Scan("fake", fake.presentKeys(), null));
    LeaseChecker.Result r = LeaseChecker.check(w.lives(), w.reads(), List.of(), scans);
    System.out.println(mode + " (seed " + seed + "): " + r.summary());
    return r;
  }

  @Test
  void aCorrectServerPasses() throws InterruptedException {
    LeaseChecker.Result r = run("correct");
    assertEquals(Verdict.VALID, r.verdict(), r.problems().toString());
    assertTrue(r.revoked() > 0, "some leases are revoked");
  }

  @Test
  void aServerThatDeletesAtHalfTheTtlIsCaughtEarly() throws InterruptedException {
    LeaseChecker.Result r = run("early");
    assertEquals(Verdict.INVALID, r.verdict());
    assertTrue(r.problems().stream().anyMatch(p -> p.contains("early")), r.problems().toString());
  }

  @Test
  void aServerThatNeverDeletesIsCaughtLateAndAtTheEnd() throws InterruptedException {
    LeaseChecker.Result r = run("never");
    assertEquals(Verdict.INVALID, r.verdict());
    assertTrue(r.problems().stream().anyMatch(p -> p.contains("still has")), r.problems().toString());
  }
}
