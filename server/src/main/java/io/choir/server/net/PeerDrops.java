package io.choir.server.net;

import io.choir.server.security.DatagramCodec;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * PeerDrops counts the peer messages the transport drops, by reason: datagrams under
 * choir.datagrams.dropped.* (every {@link DatagramCodec#REASONS} counter exists from the start, so
 * status shows them at 0 too) and peer stream envelopes under choir.peer_stream.dropped.*. A dropped
 * received datagram is also logged as a warning with its sender, at most once per {@link
 * DropLog#DEFAULT_INTERVAL_NS} per reason. Thread-safe: the event loop, the senders and the stream
 * connections all count here.
 */
final class PeerDrops {
  /** The transport's logger: the drop lines keep the name operators know them by. */
  private static final Logger log = LoggerFactory.getLogger(PeerTransport.class);

  private final MeterRegistry metrics;
  private final DropLog dropLog = new DropLog(DropLog.DEFAULT_INTERVAL_NS);
  private final Map<String, Counter> datagrams = new ConcurrentHashMap<>();
  private final Map<String, Counter> stream = new ConcurrentHashMap<>();

  PeerDrops(MeterRegistry metrics) {
    this.metrics = metrics;
    for (String reason : DatagramCodec.REASONS) {
      datagrams.computeIfAbsent(reason, r -> metrics.counter("choir.datagrams.dropped." + r)); // shown at 0 too
    }
  }

  /** Counts one datagram dropped for reason (not logged: a send-side or expected drop). */
  void datagram(String reason) {
    datagrams.computeIfAbsent(reason, r -> metrics.counter("choir.datagrams.dropped." + r)).increment();
  }

  /** Counts a dropped received datagram and logs it (rate-limited per reason) with its source. */
  void datagram(String reason, InetSocketAddress from) {
    datagram(reason);
    long unlogged = dropLog.onDrop(reason, System.nanoTime());
    if (unlogged >= 0) {
      log.atWarn().addKeyValue("reason", reason).addKeyValue("from", from)
          .addKeyValue("unlogged_since_last", unlogged)
          .log("dropped a peer datagram (logged at most once per 10 s per reason)");
    }
  }

  /** Counts one peer stream envelope dropped (sent or received) for reason. */
  void stream(String reason) {
    stream.computeIfAbsent(reason, r -> metrics.counter("choir.peer_stream.dropped." + r)).increment();
  }

  /** Dropped datagrams by reason (the reasons with at least one drop; status shows every counter). */
  Map<String, Long> datagramsByReason() {
    Map<String, Long> out = new TreeMap<>();
    datagrams.forEach((k, v) -> {
      if (v.count() > 0) {
        out.put(k, (long) v.count());
      }
    });
    return out;
  }

  /** Peer stream messages dropped (sent or received) by reason. */
  Map<String, Long> streamByReason() {
    Map<String, Long> out = new TreeMap<>();
    stream.forEach((k, v) -> out.put(k, (long) v.count()));
    return out;
  }
}
