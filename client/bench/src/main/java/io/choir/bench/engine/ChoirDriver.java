package io.choir.bench.engine;

import io.choir.client.ChoirClient;
import io.choir.client.ReadConsistency;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.UnaryOperator;

/**
 * ChoirDriver spreads the benchmark over a few {@link ChoirClient}s (each one connection per replica
 * and one I/O thread), round robin, with room for every client's operations in flight.
 */
public final class ChoirDriver implements BenchDriver {
  private final List<ChoirClient> clients = new ArrayList<>();
  private final AtomicInteger next = new AtomicInteger();
  private final ReadConsistency consistency;
  private final Map<String, Object> info = new LinkedHashMap<>();

  public ChoirDriver(List<String> endpoints, int connections, int maxInFlight, Duration timeout,
      ReadConsistency consistency) {
    this(endpoints, connections, maxInFlight, timeout, consistency, UnaryOperator.identity(), false);
  }

  /**
   * @param security sets TLS and the token on each client's builder
   * @param tls whether security turns TLS on (for the report)
   */
  public ChoirDriver(List<String> endpoints, int connections, int maxInFlight, Duration timeout,
      ReadConsistency consistency, UnaryOperator<ChoirClient.Builder> security, boolean tls) {
    this.consistency = consistency;
    try {
      for (int i = 0; i < connections; i++) {
        clients.add(security.apply(ChoirClient.builder()
            .endpoints(endpoints)
            .requestTimeout(timeout)
            .maxInFlight(maxInFlight)
            .readConsistency(consistency)
            .eventLoopThreads(1))
            .build());
      }
    } catch (RuntimeException e) {
      close();
      throw e;
    }
    info.put("endpoints", String.join(",", endpoints));
    info.put("connections", connections);
    info.put("reads", consistency.name().toLowerCase(Locale.ROOT));
    info.put("timeout_ms", timeout.toMillis());
    info.put("tls", tls);
  }

  private ChoirClient pick() {
    return clients.get(Math.floorMod(next.getAndIncrement(), clients.size()));
  }

  @Override
  public CompletableFuture<?> write(byte[] key, byte[] value) {
    return pick().async().put(key, value);
  }

  @Override
  public CompletableFuture<?> read(byte[] key) {
    return pick().async().get(key, consistency);
  }

  @Override
  public String name() {
    return "choir";
  }

  @Override
  public Map<String, Object> describe() {
    return info;
  }

  @Override
  public void close() {
    for (ChoirClient c : clients) {
      try {
        c.close();
      } catch (RuntimeException ignored) {
        // closing the others matters more
      }
    }
  }
}
