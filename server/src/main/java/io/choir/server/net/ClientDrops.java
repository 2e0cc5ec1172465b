package io.choir.server.net;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.net.SocketAddress;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.event.Level;

/**
 * ClientDrops counts every client connection the replica refuses or closes, by reason (status counters
 * {@code client_refused_*} and {@code client_closed_*}), and logs each reason at most once per
 * {@link #LOG_INTERVAL_NS}, with how many it did not log since: an attacker opening thousands of
 * connections gets counted, not a line each. Thread-safe.
 */
final class ClientDrops {
  private static final Logger log = LoggerFactory.getLogger(ClientDrops.class);
  /** One log line per reason per interval at most: enough to see an attack, too few to flood the log. */
  static final long LOG_INTERVAL_NS = TimeUnit.SECONDS.toNanos(10);

  /** Why a connection was refused or closed; the metric name becomes the status counter's name. */
  enum Reason {
    /** max_connections connections were open. */
    REFUSED_MAX_CONNECTIONS("client_refused.max_connections", Level.WARN),
    /** max_connections_per_address connections from the same address were open. */
    REFUSED_PER_ADDRESS("client_refused.per_address", Level.WARN),
    /** No traffic and nothing in flight for client_idle_timeout_ms. */
    CLOSED_IDLE("client_closed.idle", Level.DEBUG),
    /** It left its replies unread (none written) for client_idle_timeout_ms. */
    CLOSED_STALLED("client_closed.stalled", Level.WARN),
    /** A started frame was not completed within client_frame_timeout_ms (slowloris). */
    CLOSED_FRAME_TIMEOUT("client_closed.frame_timeout", Level.WARN),
    /** Its unfinished frame would have passed max_frame_bytes_total (over all connections). */
    CLOSED_FRAME_MEMORY("client_closed.frame_memory", Level.WARN),
    /** A frame's length was above max_frame_bytes. */
    CLOSED_TOO_LARGE("client_closed.too_large", Level.WARN),
    /** A frame's length was negative or its body did not parse. */
    CLOSED_MALFORMED("client_closed.malformed", Level.WARN);

    final String metric;
    final Level level;

    Reason(String metric, Level level) {
      this.metric = metric;
      this.level = level;
    }
  }

  private final Map<Reason, Counter> counters = new EnumMap<>(Reason.class);
  private final Map<Reason, AtomicLong> lastLogNs = new EnumMap<>(Reason.class);
  private final Map<Reason, AtomicLong> unlogged = new EnumMap<>(Reason.class);

  ClientDrops(MeterRegistry metrics) {
    for (Reason r : Reason.values()) {
      counters.put(r, metrics.counter("choir." + r.metric));
      lastLogNs.put(r, new AtomicLong(System.nanoTime() - LOG_INTERVAL_NS));
      unlogged.put(r, new AtomicLong());
    }
  }

  /** Counts one refusal or close of the connection from remote; logs it unless one was logged lately. */
  void count(Reason reason, SocketAddress remote, String detail) {
    counters.get(reason).increment();
    AtomicLong last = lastLogNs.get(reason);
    long now = System.nanoTime();
    long then = last.get();
    if (now - then < LOG_INTERVAL_NS || !last.compareAndSet(then, now)) {
      unlogged.get(reason).incrementAndGet();
      return;
    }
    log.atLevel(reason.level)
        .addKeyValue("reason", reason.metric)
        .addKeyValue("remote", remote)
        .addKeyValue("detail", detail)
        .addKeyValue("not_logged_since_last", unlogged.get(reason).getAndSet(0))
        .log("client connection refused or closed");
  }

  long count(Reason reason) {
    return (long) counters.get(reason).count();
  }
}
