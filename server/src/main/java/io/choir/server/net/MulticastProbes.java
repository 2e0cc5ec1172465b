package io.choir.server.net;

import io.choir.proto.TransportProbe;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.security.SecureRandom;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * MulticastProbes is the transport's own test of multicast (peer_transport: auto), per peer and all
 * the time: every probe interval it multicasts a small sealed {@link TransportProbe}; a peer that
 * hears it answers by unicast with the same nonce; a peer whose answer came within the last {@link
 * #REACH_INTERVALS} intervals is reached by multicast. During the first {@link #START_WINDOW_INTERVALS}
 * probe intervals' worth of start window probes go out ten times as often, so that the transport knows
 * quickly whether multicast works at all; until a peer answers it gets every message to all by
 * unicast, which is always safe. Each change of a peer's mode is logged once (info) and counted
 * (choir.transport.mode_changes).
 *
 * <p>Every replica answers probes, whatever its own mode (the asker decides). Bounds: state only for
 * members (the codec has dropped every other sender before a probe gets here), answers to one member
 * at most once per {@link #minAnswerSpacingNs} (more are dropped, probe_rate_limited), answers
 * accepted only for one of the last {@link #RECENT_NONCES} nonces sent (else probe_unknown_nonce), and
 * a probe that did not come by multicast is not answered (probe_not_multicast). Never given to the core.
 *
 * <p>Threads: {@link #tick} and the receive methods run on the transport's event loop; {@link
 * #reached} and {@link #reachedPeers} from any thread.
 */
final class MulticastProbes {
  private static final Logger log = LoggerFactory.getLogger(PeerTransport.class);

  /** Default time between probes. */
  static final long DEFAULT_INTERVAL_NS = TimeUnit.SECONDS.toNanos(1);
  /** A peer is reached while its last answer is at most this many intervals old. */
  static final int REACH_INTERVALS = 3;
  /** The start window, in probe intervals: probes go out ten times as often meanwhile. */
  static final int START_WINDOW_INTERVALS = 1;
  /** How many of the latest nonces an answer may carry. */
  static final int RECENT_NONCES = 16;
  /** How often {@link #tick} should run, in fractions of the interval. */
  static final int TICKS_PER_INTERVAL = 10;

  /** What this replica knows of one peer's multicast. */
  private static final class Peer {
    volatile long lastAnswerNs;
    volatile boolean answered;
    volatile boolean reached;
    volatile long lastAnswerSentNs;
    volatile boolean answerSent;
  }

  private final PeerDirectory directory;
  private final LongSupplier clock;
  private final long intervalNs;
  private final long minAnswerSpacingNs;
  private final boolean probing;
  private final PeerDrops drops;
  private final BiConsumer<Integer, TransportProbe> unicast;
  private final Consumer<TransportProbe> multicast;
  private final Map<Integer, Peer> peers = new ConcurrentHashMap<>();
  private final long[] recent = new long[RECENT_NONCES];
  private int nextRecent;
  private final SecureRandom random = new SecureRandom();
  private final long startNs;
  private long lastProbeNs;
  private boolean startDecided;
  private final Counter probesSent;
  private final Counter answersSent;
  private final Counter answersReceived;
  private final Counter modeChanges;

  /**
   * Probes of replica directory.selfId(): probing is true in auto mode (else it only answers);
   * multicast sends a probe to the group, unicast an answer to one peer; intervalNs is the probe
   * interval.
   */
  MulticastProbes(PeerDirectory directory, boolean probing, long intervalNs, LongSupplier clock,
      PeerDrops drops, Consumer<TransportProbe> multicast,
      BiConsumer<Integer, TransportProbe> unicast, MeterRegistry metrics) {
    this.directory = directory;
    this.probing = probing;
    this.intervalNs = intervalNs;
    this.minAnswerSpacingNs = Math.max(1, intervalNs / (2 * TICKS_PER_INTERVAL));
    this.clock = clock;
    this.drops = drops;
    this.multicast = multicast;
    this.unicast = unicast;
    this.startNs = clock.getAsLong();
    this.probesSent = metrics.counter("choir.transport.probes_sent");
    this.answersSent = metrics.counter("choir.transport.probe_answers_sent");
    this.answersReceived = metrics.counter("choir.transport.probe_answers_received");
    this.modeChanges = metrics.counter("choir.transport.mode_changes");
  }

  /** How often the transport calls {@link #tick}. */
  long tickNs() {
    return Math.max(1, intervalNs / TICKS_PER_INTERVAL);
  }

  /** Sends a probe when one is due and re-evaluates every peer's mode (event loop; never throws). */
  void tick() {
    if (!probing) {
      return;
    }
    try {
      probeAndEvaluate();
    } catch (RuntimeException e) {
      // A periodic task that throws is cancelled: log and go on with the next tick.
      log.atWarn().setCause(e).log("multicast probe tick failed");
    }
  }

  private void probeAndEvaluate() {
    long now = clock.getAsLong();
    boolean starting = now - startNs < START_WINDOW_INTERVALS * intervalNs;
    if (starting || now - lastProbeNs >= intervalNs) {
      lastProbeNs = now;
      long nonce = random.nextLong();
      synchronized (recent) {
        recent[nextRecent] = nonce;
        nextRecent = (nextRecent + 1) % RECENT_NONCES;
      }
      multicast.accept(TransportProbe.newBuilder().setNonce(nonce).build());
      probesSent.increment();
    }
    for (int id : directory.peerIds()) {
      evaluate(id, now);
    }
    peers.keySet().retainAll(directory.ids());
    if (!starting && !startDecided) {
      startDecided = true;
      Set<Integer> reached = reachedPeers();
      log.atInfo().addKeyValue("reached_by_multicast", reached).addKeyValue("peers", directory.peerIds())
          .log(reached.isEmpty() ? "multicast reaches no peer: messages to all go by unicast"
              : "multicast works: messages to all go by multicast, and by unicast to the peers it misses");
    }
  }

  private void evaluate(int id, long now) {
    Peer p = peers.computeIfAbsent(id, k -> new Peer());
    boolean reached = p.answered && now - p.lastAnswerNs <= REACH_INTERVALS * intervalNs;
    if (reached != p.reached) {
      p.reached = reached;
      modeChanges.increment();
      log.atInfo().addKeyValue("peer", id).addKeyValue("mode", reached ? "multicast" : "unicast")
          .log(reached ? "peer reached by multicast" : "peer no longer answers multicast probes: unicast to it");
    }
  }

  /** A probe or an answer from member sender (already checked by the codec; event loop). */
  void received(int sender, TransportProbe probe, boolean viaMulticast) {
    if (!directory.isMember(sender) || sender == directory.selfId()) {
      drops.datagram("probe_unknown_sender");
      return;
    }
    if (!probe.getAnswer()) {
      if (!viaMulticast) {
        drops.datagram("probe_not_multicast");
        return;
      }
      Peer p = peers.computeIfAbsent(sender, k -> new Peer());
      long now = clock.getAsLong();
      if (p.answerSent && now - p.lastAnswerSentNs < minAnswerSpacingNs) {
        drops.datagram("probe_rate_limited");
        return;
      }
      p.answerSent = true;
      p.lastAnswerSentNs = now;
      unicast.accept(sender, TransportProbe.newBuilder().setNonce(probe.getNonce()).setAnswer(true).build());
      answersSent.increment();
      return;
    }
    if (viaMulticast || !probing || !recentNonce(probe.getNonce())) {
      drops.datagram("probe_unknown_nonce");
      return;
    }
    answersReceived.increment();
    Peer p = peers.computeIfAbsent(sender, k -> new Peer());
    long now = clock.getAsLong();
    p.lastAnswerNs = now;
    p.answered = true;
    evaluate(sender, now);
  }

  private boolean recentNonce(long nonce) {
    synchronized (recent) {
      for (long n : recent) {
        if (n == nonce && n != 0) {
          return true;
        }
      }
      return false;
    }
  }

  /** True when peer id answered a recent multicast probe (auto mode; any thread). */
  boolean reached(int id) {
    Peer p = peers.get(id);
    return p != null && p.reached;
  }

  /** True when at least one peer is reached by multicast now (cheap: on every send to all). */
  boolean anyReached() {
    for (Peer p : peers.values()) {
      if (p.reached) {
        return true;
      }
    }
    return false;
  }

  /** The peers reached by multicast now. */
  Set<Integer> reachedPeers() {
    Set<Integer> out = new TreeSet<>();
    peers.forEach((id, p) -> {
      if (p.reached) {
        out.add(id);
      }
    });
    return out;
  }
}
