package io.choir.examples;

import io.choir.client.CasFailedException;
import io.choir.client.ChoirClient;
import io.choir.client.VersionedValue;
import io.choir.client.recipes.LeaderElection;
import io.choir.client.recipes.Lock;
import java.io.PrintStream;
import java.time.Duration;
import java.util.Optional;

/**
 * LockExample shows the lock and leader election recipes and why they hand out fencing tokens. Worker A
 * takes the lock and writes to a guarded resource with its token; then A "pauses" past its lease (here
 * its lease is revoked under it, as an expiry would), B takes the lock with a higher token and writes;
 * when A wakes up and writes with its old token, the resource refuses it. The resource is a key whose
 * value starts with the highest token that wrote it, changed only by compare-and-set. Last, two
 * candidates campaign for leadership: one leads, and the other takes over when it resigns.
 */
public final class LockExample {
  private LockExample() {}

  public static void main(String[] args) {
    try (ChoirClient client = ChoirClient.builder().endpoints(Endpoints.of(args)).build()) {
      run(client, System.out);
    }
  }

  static void run(ChoirClient client, PrintStream out) {
    try {
      locks(client, out);
      election(client, out);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      out.println("interrupted");
    }
  }

  private static void locks(ChoirClient client, PrintStream out) throws InterruptedException {
    String lockKey = "examples/locks/report";
    Duration ttl = Duration.ofSeconds(2);
    Duration poll = Duration.ofMillis(50);
    Lock a = new Lock(client, lockKey, "worker-a", ttl, poll);
    Lock b = new Lock(client, lockKey, "worker-b", ttl, poll);
    Lock.Held heldByA = a.acquire(Duration.ofSeconds(10));
    out.println("worker-a holds the lock with token " + heldByA.fencingToken());
    out.println("worker-b tryAcquire: " + (b.tryAcquire().isPresent() ? "got it" : "held by " + a.holder().orElse("?")));
    out.println("worker-a writes: " + guardedWrite(client, heldByA.fencingToken(), "from a"));
    // A pauses longer than its TTL: its lease ends without A noticing (here revoked, as an expiry would).
    client.leases().revoke(heldByA.lease().id());
    try (Lock.Held heldByB = b.acquire(Duration.ofSeconds(10))) {
      out.println("worker-b holds the lock with token " + heldByB.fencingToken());
      out.println("worker-b writes: " + guardedWrite(client, heldByB.fencingToken(), "from b"));
      out.println("worker-a, awake again, writes: " + guardedWrite(client, heldByA.fencingToken(), "late from a"));
    }
  }

  /** Writes data to the guarded resource unless a higher token wrote it already: "accepted" or "refused". */
  static String guardedWrite(ChoirClient client, long token, String data) {
    String resource = "examples/locks/report-data";
    while (true) {
      Optional<VersionedValue> current = client.get(resource);
      long highest = current.map(v -> Long.parseLong(v.valueAsString().split(" ", 2)[0])).orElse(0L);
      if (token < highest) {
        return "refused (token " + token + " < " + highest + ")";
      }
      try {
        if (current.isPresent()) {
          client.compareAndSetVersion(resource, current.get().version(), token + " " + data);
        } else {
          client.putIfAbsent(resource, token + " " + data);
        }
        return "accepted";
      } catch (CasFailedException e) {
        // another write came first: look again
      }
    }
  }

  private static void election(ChoirClient client, PrintStream out) throws InterruptedException {
    String key = "examples/leader";
    LeaderElection first = new LeaderElection(client, key, "node-1", Duration.ofSeconds(2), Duration.ofMillis(50));
    LeaderElection second = new LeaderElection(client, key, "node-2", Duration.ofSeconds(2), Duration.ofMillis(50));
    LeaderElection.Leadership one = first.campaign(Duration.ofSeconds(10));
    out.println("leader: " + first.leader().orElse("none") + " in term " + one.term());
    one.close(); // resigns
    try (LeaderElection.Leadership two = second.campaign(Duration.ofSeconds(10))) {
      out.println("leader: " + second.leader().orElse("none") + " in term " + two.term()
          + (two.term() > one.term() ? " (a later term)" : ""));
    }
  }
}
