package io.choir.client;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Router decides where a call's next attempt goes: the leader guess, moved by the hints replicas give
 * and by failures, and the endpoints that recently did not answer in time (suspects).
 *
 * <p>Hints (fast failover, issue 9 item 2i): refusals carry the answering replica's view. Views only
 * grow in VR (a replica never returns to a lower view; VR Revisited section 4.2), so a hint from a view
 * older than one already seen names a deposed primary and is not followed. An endpoint whose attempt
 * timed out (a paused or cut-off primary: its connection stays up but nothing comes back) is a suspect:
 * retries skip it while another endpoint is not suspect, and a hint naming it is followed only when it
 * comes from a newer view than the one known when it timed out (when none was known, than the view of
 * the first hint naming it), or after {@code suspicionNs} (a pause that ended without a view change).
 * Any answer from a suspect clears it.
 *
 * <p>Thread-safe; the lock is never held while calling out. Bounded by the endpoints the client knows.
 */
final class Router {
  private static final Logger log = LoggerFactory.getLogger(Router.class);

  private record Suspicion(long sinceNs, long view) {}

  private final List<Endpoint> endpoints;
  private final long suspicionNs;
  private final Map<Endpoint, Suspicion> suspects = new HashMap<>(); // guarded by this
  private Endpoint guess; // guarded by this
  private long maxViewSeen; // guarded by this
  private volatile int suspectCount; // suspects.size(), for the lock-free check in onAnswer

  private final LongSupplier clock;

  Router(List<Endpoint> endpoints, long suspicionNs) {
    this(endpoints, suspicionNs, () -> Long.MIN_VALUE / 2);
  }

  /** clock gives the time suspicions age by (the dispatcher's scheduler). */
  Router(List<Endpoint> endpoints, long suspicionNs, LongSupplier clock) {
    this.endpoints = List.copyOf(endpoints);
    this.suspicionNs = suspicionNs;
    this.clock = clock;
    this.guess = endpoints.get(0);
  }

  synchronized Endpoint guess() {
    return guess;
  }

  synchronized long maxViewSeen() {
    return maxViewSeen;
  }

  synchronized boolean isSuspect(Endpoint e) {
    return suspects.containsKey(e);
  }

  /** from answered (anything at all): it is alive. Lock-free while there is no suspect (every response comes here). */
  void onAnswer(Endpoint from) {
    if (suspectCount == 0) {
      return;
    }
    synchronized (this) {
      suspects.remove(from);
      suspectCount = suspects.size();
    }
  }

  /**
   * from refused with NOT_PRIMARY or UNAVAILABLE in view (0 when the replica did not say), naming
   * address as the primary (empty when unknown). Returns the endpoint to follow at once, or null when
   * there is no hint worth following (then the caller backs off and retries elsewhere).
   */
  synchronized Endpoint onRefusal(Endpoint from, String address, long view, long nowNs) {
    long before = maxViewSeen;
    maxViewSeen = Math.max(maxViewSeen, view);
    suspects.remove(from);
    suspectCount = suspects.size();
    Endpoint hint = parseHint(address, from);
    if (hint == null) {
      moveOff(from);
      return null;
    }
    if (view != 0 && view < before) {
      log.debug("ignoring hint {} from {}: view {} is older than view {} already seen", hint, from, view, before);
      moveOff(from);
      return null;
    }
    Suspicion s = suspects.get(hint);
    if (s != null && s.view() == 0 && nowNs - s.sinceNs() < suspicionNs) {
      // It timed out before any view was seen (OK answers carry none): the first hint naming it
      // tells the view it was primary in, which is no news; only a later view rehabilitates it.
      suspects.put(hint, new Suspicion(s.sinceNs(), view));
      log.debug("not following hint {} from {}: it timed out as the primary of view {}", hint, from, view);
      moveOff(from);
      return null;
    }
    if (s != null) {
      if (view > s.view() || nowNs - s.sinceNs() >= suspicionNs) {
        suspects.remove(hint);
        suspectCount = suspects.size();
      } else {
        log.debug("not following hint {} from {}: it timed out in view {} and the hint is from view {}",
            hint, from, s.view(), view);
        moveOff(from);
        return null;
      }
    }
    guess = hint;
    return hint;
  }

  /** An attempt at failed could not connect, lost its connection, or was refused without a hint. */
  synchronized void onFailure(Endpoint failed) {
    moveOff(failed);
  }

  /** An attempt at e got no answer within the attempt timeout. */
  synchronized void suspect(Endpoint e, long nowNs) {
    suspects.put(e, new Suspicion(nowNs, maxViewSeen));
    suspectCount = suspects.size();
    moveOff(e);
  }

  /**
   * Where to retry after an attempt at failed: the leader guess unless it is failed or a suspect, else
   * the next endpoint after failed (round robin) that is not a suspect, else simply the next one.
   * Returns failed itself only when every other endpoint is a suspect and failed is not, or when
   * failed is the only endpoint.
   */
  synchronized Endpoint retryTarget(Endpoint failed) {
    expireSuspicions(clock.getAsLong());
    if (!guess.equals(failed) && !suspects.containsKey(guess)) {
      return guess;
    }
    return nextNonSuspect(failed);
  }

  private void moveOff(Endpoint failed) {
    if (guess.equals(failed)) {
      guess = nextNonSuspect(failed);
    }
  }

  private Endpoint nextNonSuspect(Endpoint from) {
    // A suspicion older than suspicionNs has lapsed: a replica that timed out during one fault must not
    // stay avoided forever because the client, talking only to the primary, never hears from it again
    // (found by a process test: pause, partition, then kill of the new primary left every attempt on the
    // dead endpoint while both live ones were still suspects).
    expireSuspicions(clock.getAsLong());
    int n = endpoints.size();
    int i = endpoints.indexOf(from);
    for (int k = 1; k <= n; k++) {
      // An unlisted endpoint (learned from a redirect) counts as position -1: start at the first.
      Endpoint e = endpoints.get(Math.floorMod((i < 0 ? -1 : i) + k, n));
      if (!suspects.containsKey(e)) {
        return e; // may be from itself (k == n) when every other endpoint is a suspect
      }
    }
    return endpoints.get(i < 0 ? 0 : (i + 1) % n);
  }

  private void expireSuspicions(long nowNs) {
    if (suspects.isEmpty()) {
      return;
    }
    suspects.values().removeIf(s -> nowNs - s.sinceNs() >= suspicionNs);
    suspectCount = suspects.size();
  }

  private static Endpoint parseHint(String address, Endpoint from) {
    if (address == null || address.isBlank()) {
      return null;
    }
    try {
      Endpoint hint = Endpoint.parse(address);
      return hint.equals(from) ? null : hint;
    } catch (IllegalArgumentException e) {
      log.debug("ignoring a malformed primary address {}", address);
      return null;
    }
  }
}
