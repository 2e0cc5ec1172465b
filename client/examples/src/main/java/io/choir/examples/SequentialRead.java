package io.choir.examples;

import io.choir.client.ChoirClient;
import io.choir.client.ReadConsistency;
import io.choir.client.VersionedValue;
import java.io.PrintStream;
import java.util.Optional;

/**
 * SequentialRead shows the cheaper read: any replica may answer it from its applied state, so it may
 * be older than the latest write of another client, but never older than what this client has seen
 * (the client sends the highest op it has seen, {@code highestOpSeen()}, and a replica behind it waits
 * or refuses). After its own write, a client therefore reads that write or a later one.
 */
public final class SequentialRead {
  private SequentialRead() {}

  public static void main(String[] args) {
    try (ChoirClient client = ChoirClient.builder().endpoints(Endpoints.of(args)).build()) {
      run(client, System.out);
    }
  }

  static void run(ChoirClient client, PrintStream out) {
    long version = client.put("examples/config", "v2");
    out.println("put examples/config = v2 at version " + version + "; highest op seen " + client.highestOpSeen());
    Optional<VersionedValue> v = client.get("examples/config", ReadConsistency.SEQUENTIAL);
    out.println("sequential get examples/config = " + v.map(VersionedValue::valueAsString).orElse("(absent)")
        + " at version " + v.map(VersionedValue::version).orElse(0L) + " (never older than " + version + ")");
  }
}
