package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * PeerDirectory with a fake resolver whose answers change and a fake clock: names resolve at start,
 * a name that does not resolve yet is not fatal and is tried again, re-resolution is rate-limited to
 * once per second per peer and happens for silent peers only, changes are counted, and update()
 * replaces the whole map and tells its listeners.
 */
class PeerDirectoryTest {
  private static final long SILENCE_NS = TimeUnit.MILLISECONDS.toNanos(200);

  /** A resolver over a map the test changes; a missing name does not resolve. */
  static final class FakeResolver implements PeerDirectory.Resolver {
    final Map<String, InetAddress> answers = new ConcurrentHashMap<>();
    final AtomicLong lookups = new AtomicLong();

    @Override
    public InetAddress resolve(String host) throws UnknownHostException {
      lookups.incrementAndGet();
      InetAddress a = answers.get(host);
      if (a == null) {
        throw new UnknownHostException(host);
      }
      return a;
    }

    void set(String host, String literal) throws UnknownHostException {
      answers.put(host, InetAddress.getByName(literal));
    }
  }

  private final AtomicLong now = new AtomicLong(1_000_000_000L);
  private final FakeResolver resolver = new FakeResolver();

  private static InetSocketAddress named(String host, int port) {
    return InetSocketAddress.createUnresolved(host, port);
  }

  private PeerDirectory directory(Map<Integer, InetSocketAddress> members) {
    return new PeerDirectory(1, members, resolver, now::get, SILENCE_NS, new SimpleMeterRegistry());
  }

  @Test
  void shouldResolveNamesAtStartAndKeepRetryingOneThatDoesNotResolveYet() throws Exception {
    resolver.set("choir-1.choir-peers", "127.0.0.11");
    resolver.set("choir-2.choir-peers", "127.0.0.12");
    PeerDirectory d = directory(Map.of(1, named("choir-1.choir-peers", 7600), 2, named("choir-2.choir-peers", 7600),
        3, named("choir-3.choir-peers", 7600)));
    assertEquals(new InetSocketAddress("127.0.0.12", 7600), d.address(2));
    assertNull(d.address(3), "not resolvable yet, and not fatal");
    assertEquals(InetAddress.getByName("127.0.0.11"), d.selfHost());
    assertEquals(2, d.idOf(new InetSocketAddress("127.0.0.12", 7600)));
    assertTrue(d.isPeerHost(InetAddress.getByName("127.0.0.12")));
    assertFalse(d.isPeerHost(InetAddress.getByName("127.0.0.11")), "this replica's own host is not a peer's");
    // Within a second nothing is asked again; then the silent (unresolved) peer is.
    long lookups = resolver.lookups.get();
    d.resolveSilent();
    assertEquals(lookups, resolver.lookups.get(), "at most once per second per peer");
    resolver.set("choir-3.choir-peers", "127.0.0.13");
    now.addAndGet(PeerDirectory.MIN_RESOLVE_INTERVAL_NS);
    d.heard(2);
    d.resolveSilent();
    assertEquals(new InetSocketAddress("127.0.0.13", 7600), d.address(3));
    assertEquals(lookups + 1, resolver.lookups.get(), "only the silent peer is resolved again");
    assertEquals(0, d.addressChanges(), "a first resolution is not a change");
  }

  @Test
  void shouldReResolveASilentPeerAndCountTheChangeAtMostOncePerSecond() throws Exception {
    resolver.set("a", "127.0.0.1");
    resolver.set("b", "127.0.0.2");
    PeerDirectory d = directory(Map.of(1, named("a", 7000), 2, named("b", 7001)));
    resolver.set("b", "127.0.0.3"); // the pod moved
    now.addAndGet(SILENCE_NS / 2);
    d.resolveSilent();
    assertEquals(new InetSocketAddress("127.0.0.2", 7001), d.address(2), "not silent long enough yet");
    now.addAndGet(PeerDirectory.MIN_RESOLVE_INTERVAL_NS);
    assertEquals(1, d.resolveSilent());
    assertEquals(new InetSocketAddress("127.0.0.3", 7001), d.address(2));
    assertEquals(1, d.addressChanges());
    assertEquals(-1, d.idOf(new InetSocketAddress("127.0.0.2", 7001)), "the old address is no member's now");
    // A failed connect asks again, but not twice within a second.
    resolver.set("b", "127.0.0.4");
    assertFalse(d.resolve(2));
    now.addAndGet(PeerDirectory.MIN_RESOLVE_INTERVAL_NS);
    assertTrue(d.resolve(2));
    assertEquals(new InetSocketAddress("127.0.0.4", 7001), d.address(2));
    // A lookup that fails keeps the last address.
    resolver.answers.remove("b");
    now.addAndGet(PeerDirectory.MIN_RESOLVE_INTERVAL_NS);
    assertFalse(d.resolve(2));
    assertEquals(new InetSocketAddress("127.0.0.4", 7001), d.address(2));
  }

  @Test
  void shouldNeverAskTheResolverForLiterals() {
    PeerDirectory d = directory(Map.of(1, new InetSocketAddress("127.0.0.1", 7000),
        2, new InetSocketAddress("127.0.0.1", 7001)));
    now.addAndGet(10 * PeerDirectory.MIN_RESOLVE_INTERVAL_NS);
    d.resolveSilent();
    d.resolve(2);
    assertEquals(0, resolver.lookups.get());
    assertEquals(new InetSocketAddress("127.0.0.1", 7001), d.address(2));
  }

  @Test
  void shouldReplaceTheWholeMapOnUpdateAndTellItsListeners() throws Exception {
    resolver.set("a", "127.0.0.1");
    resolver.set("b", "127.0.0.2");
    resolver.set("c", "127.0.0.3");
    resolver.set("d", "127.0.0.4");
    PeerDirectory d = directory(Map.of(1, named("a", 7000), 2, named("b", 7000), 3, named("c", 7000)));
    List<Set<Integer>> told = new ArrayList<>();
    d.onMembersChanged(told::add);
    long lookups = resolver.lookups.get();
    d.update(Map.of(1, named("a", 7000), 2, named("b", 7000), 4, named("d", 7000)));
    assertEquals(List.of(Set.of(1, 2, 4)), told);
    assertEquals(Set.of(1, 2, 4), d.ids());
    assertEquals(List.of(2, 4), d.peerIds());
    assertFalse(d.isMember(3));
    assertTrue(d.isFormer(3), "a removed member is a former member");
    assertEquals(new InetSocketAddress("127.0.0.3", 7000), d.address(3), "it may still be told it was removed");
    assertEquals(Set.of(1, 2, 3, 4), d.acceptedIds());
    assertNull(d.address(4), "update never blocks on a lookup");
    assertEquals(lookups, resolver.lookups.get());
    d.resolveSilent(); // the resolver thread's next round
    assertEquals(new InetSocketAddress("127.0.0.4", 7000), d.address(4));
    assertEquals(lookups + 1, resolver.lookups.get(), "members that stayed are not resolved again");
    d.update(Map.of(1, named("a", 7000), 2, named("b", 7000), 5, named("127.0.0.5", 7005)));
    assertEquals(new InetSocketAddress("127.0.0.5", 7005), d.address(5), "a literal has its address at once");
  }

  @Test
  void shouldRememberTheLastSixteenFormerMembersAndForgetOneAddedAgain() {
    Map<Integer, InetSocketAddress> members = new TreeMap<>();
    members.put(1, new InetSocketAddress("127.0.0.1", 7000));
    for (int id = 2; id <= 20; id++) {
      members.put(id, new InetSocketAddress("127.0.0." + id, 7000));
    }
    PeerDirectory d = directory(members);
    for (int id = 2; id <= 20; id++) {
      members.remove(id);
      d.update(members); // one removal at a time, as epochs do
    }
    assertEquals(PeerDirectory.MAX_FORMER, d.formerIds().size());
    assertEquals(List.of(5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), List.copyOf(d.formerIds()),
        "the oldest are forgotten first");
    assertFalse(d.isFormer(2));
    assertNull(d.address(2));
    assertTrue(d.isPeerHost(new InetSocketAddress("127.0.0.9", 1).getAddress()), "a former member's host is admitted");

    members.put(9, new InetSocketAddress("127.0.0.9", 7000));
    d.update(members);
    assertTrue(d.isMember(9));
    assertFalse(d.isFormer(9), "a member again is no former member");
    assertFalse(d.formerIds().contains(1), "this replica is never its own former member");
  }
}
