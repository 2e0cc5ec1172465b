package io.choir.examples;

import io.choir.client.CasFailedException;
import io.choir.client.ChoirClient;
import io.choir.client.VersionedValue;
import java.io.PrintStream;
import java.util.Optional;

/**
 * CompareAndSet shows optimistic concurrency: a counter that many processes may increment at once.
 * Each increment reads the value and its version, then writes value + 1 only if the version is still
 * the one read ({@code compareAndSetVersion}); when another writer came first the write is refused
 * with {@link CasFailedException} (nothing was written) and the loop reads again. {@code putIfAbsent}
 * creates the key only when it does not exist.
 */
public final class CompareAndSet {
  private CompareAndSet() {}

  public static void main(String[] args) {
    try (ChoirClient client = ChoirClient.builder().endpoints(Endpoints.of(args)).build()) {
      run(client, System.out);
    }
  }

  static void run(ChoirClient client, PrintStream out) {
    String key = "examples/counter";
    try {
      client.putIfAbsent(key, "0");
      out.println("created " + key + " = 0");
    } catch (CasFailedException e) {
      out.println(key + " exists already, at version " + e.currentVersion());
    }
    for (int i = 0; i < 3; i++) {
      out.println("incremented " + key + " to " + increment(client, key));
    }
    try {
      client.compareAndSet(key, "not the value", "x");
    } catch (CasFailedException e) {
      out.println("compareAndSet with a wrong expected value was refused; current version " + e.currentVersion());
    }
  }

  /** Adds one to the counter at key, retrying while other writers change it first; returns the new value. */
  static long increment(ChoirClient client, String key) {
    while (true) {
      Optional<VersionedValue> current = client.get(key);
      long value = current.map(v -> Long.parseLong(v.valueAsString())).orElse(0L);
      try {
        if (current.isPresent()) {
          client.compareAndSetVersion(key, current.get().version(), Long.toString(value + 1));
        } else {
          client.putIfAbsent(key, Long.toString(value + 1));
        }
        return value + 1;
      } catch (CasFailedException e) {
        // another writer came first: read again
      }
    }
  }
}
