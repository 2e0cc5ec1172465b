package io.choir.server.replica;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.choir.proto.ReplicaStatus;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * ReplicaStatusCountersTest: the status names every counter of the registry without its prefix, and
 * sums the counters of one name with different tags (before, the last one registered hid the others:
 * watch_refused showed the refusals of one reason only).
 */
class ReplicaStatusCountersTest {
  @Test
  void shouldSumTheTaggedCountersOfOneName() {
    SimpleMeterRegistry metrics = new SimpleMeterRegistry();
    Counter.builder("choir.watch.refused").tag("reason", "compacted").register(metrics).increment(2);
    Counter.builder("choir.watch.refused").tag("reason", "max_watchers").register(metrics).increment(3);
    metrics.counter("choir.datagrams.sent").increment(7);
    metrics.gauge("choir.leases", 4);

    ReplicaStatus.Builder s = ReplicaStatus.newBuilder();
    ReplicaStatusReport.meterCounters(s, metrics);

    assertEquals(Map.of("watch_refused", 5L, "datagrams_sent", 7L), s.getCountersMap());
  }
}
