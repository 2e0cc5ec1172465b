package io.choir.examples;

import io.choir.client.ChoirClient;
import io.choir.client.ChoirException;
import io.choir.client.Lease;
import io.choir.client.LeaseNotFoundException;
import io.choir.client.LeaseStatus;
import java.io.PrintStream;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * LeaseExample shows service registration with a lease: a worker registers its address under a key
 * attached to a lease that the client keeps alive by itself (a keep-alive every third of the TTL).
 * While the worker lives its key stays, however long; when it stops (here: revokes the lease; a crash
 * would let the TTL run out) the key disappears, in the same log entry as the lease. A keep-alive or a
 * put naming a lease that is gone is refused with {@link LeaseNotFoundException}.
 */
public final class LeaseExample {
  private LeaseExample() {}

  public static void main(String[] args) {
    try (ChoirClient client = ChoirClient.builder().endpoints(Endpoints.of(args)).build()) {
      run(client, System.out);
    }
  }

  static void run(ChoirClient client, PrintStream out) {
    String key = "examples/services/worker-1";
    Lease lease = client.leases().grant(Duration.ofSeconds(1));
    client.leases().put(key, "127.0.0.1:9000", lease.id());
    out.println("registered " + key + " with lease " + lease.id() + " (TTL " + lease.ttl().toMillis() + " ms)");
    // Three TTLs pass: the client's keep-alives hold the lease, and with it the key.
    try {
      ChoirException why = lease.lost().get(3 * lease.ttl().toMillis(), TimeUnit.MILLISECONDS);
      out.println("lease lost: " + why.getMessage());
    } catch (TimeoutException e) {
      // not lost in three TTLs: what a kept-alive lease does
    } catch (InterruptedException | ExecutionException e) {
      throw new IllegalStateException(e);
    }
    out.println("after 3 TTLs " + key + " is " + (client.get(key).isPresent() ? "present" : "absent")
        + ", lease held " + lease.isHeld());
    for (LeaseStatus s : client.leases().list(lease.id(), 1)) {
      out.println("lease " + s.id() + ": ttl " + s.ttlMs() + " ms, " + s.keys() + " key(s)");
    }
    lease.revoke().join();
    out.println("after revoking, " + key + " is " + (client.get(key).isPresent() ? "present" : "absent"));
    try {
      client.leases().keepAlive(lease.id());
    } catch (LeaseNotFoundException e) {
      out.println("keep-alive of lease " + e.leaseId() + " refused: not found");
    }
  }
}
