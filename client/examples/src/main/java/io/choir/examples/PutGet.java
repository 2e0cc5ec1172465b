package io.choir.examples;

import io.choir.client.ChoirClient;
import io.choir.client.VersionedValue;
import java.io.PrintStream;
import java.time.Duration;
import java.util.Optional;

/**
 * PutGet shows the basic calls: a write returns the key's new version (the op number of the write), a
 * linearizable read sees it, a read of an absent key is an empty Optional (not an error), and a delete
 * says whether the key existed.
 *
 * <pre>java -cp ... io.choir.examples.PutGet 127.0.0.1:7301,127.0.0.1:7302,127.0.0.1:7303</pre>
 */
public final class PutGet {
  private PutGet() {}

  public static void main(String[] args) {
    try (ChoirClient client = ChoirClient.builder()
        .endpoints(Endpoints.of(args))
        .requestTimeout(Duration.ofSeconds(5))
        .build()) {
      run(client, System.out);
    }
  }

  static void run(ChoirClient client, PrintStream out) {
    long version = client.put("examples/greeting", "hello");
    out.println("put examples/greeting = hello at version " + version);

    Optional<VersionedValue> read = client.get("examples/greeting");
    read.ifPresent(v -> out.println("get examples/greeting = " + v.valueAsString() + " at version " + v.version()));

    out.println("get examples/absent: " + (client.get("examples/absent").isPresent() ? "present" : "absent"));

    boolean existed = client.delete("examples/greeting");
    out.println("delete examples/greeting: existed " + existed);
  }
}
